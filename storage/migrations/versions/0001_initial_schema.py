"""initial schema"""

from storage.migrations.columns import Execute, Table, migration

revision = '0001'
down_revision = None


upgrade, downgrade = migration(
    Table('agencies', dict(
        id='str32', name='str200', slack_channel_id='str64?', slack_member_ids='json', timezone='str64',
        created_at='time')),
    Table('audit_events', dict(
        seq='seq', at='time', actor_kind='str16', actor_id='str64', channel='str16', action='str64',
        subject_kind='str16', subject_id='str64', data='json', prev_hash='str64', hash='str64'),
        primary_key=('seq',)),
    Table('audit_head', dict(id='int', last_seq='bigint', last_hash='str64')),
    Table('creators', dict(
        id='str32', name='str200', api_key_hash='str64', webhook_url='str2000?', webhook_secret='str128?',
        telegram_user_id='bigint?', telegram_chat_id='bigint?', language='str16', created_at='time'),
        unique=('api_key_hash', 'telegram_user_id')),
    Table('idempotency_keys', dict(
        creator_id='str32', key='str200', scope='str200', body_hash='str64', status_code='int',
        resource_kind='str16', resource_id='str32', created_at='time'),
        primary_key=('creator_id', 'key')),
    Table('invites', dict(
        token_hash='str64', subject_kind='str16', subject_id='str32', created_at='time', expires_at='time',
        used_at='time?', used_by='bigint?'),
        primary_key=('token_hash',)),
    Table('notices', dict(
        id='str32', channel='str16', recipient_kind='str16', recipient_id='str32', kind='str48',
        request_id='str32?', grant_id='str32?', payload='json', dedupe_key='str200?', status='str16',
        attempts='int', next_attempt_at='time', claimed_until='time?', sent_at='time?', last_error='text?',
        created_at='time'),
        unique=('dedupe_key',),
        indexes={'ix_notices_due': ('status', 'next_attempt_at'), 'ix_notices_request_id': ('request_id',)}),
    Table('report_runs', dict(recipient_kind='str16', recipient_id='str32', period='str32', created_at='time'),
          primary_key=('recipient_kind', 'recipient_id', 'period')),
    Table('artists', dict(
        id='str32', name='str200', agency_id='str32?', policy='str32', language='str16', timezone='str64',
        red_lines='json', telegram_user_id='bigint?', telegram_chat_id='bigint?', created_at='time'),
        foreign_keys={'agency_id': 'agencies.id'},
        unique=('telegram_user_id',),
        indexes={'ix_artists_agency_id': ('agency_id',)}),
    Table('requests', dict(
        id='str32', creator_id='str32', artist_id='str32', terms='json', terms_hash='str64', status='str32',
        ai_training='bool', decision_due_at='time', reminders_sent='int', reason='text?',
        supersedes_id='str32?', nudged_at='time?', created_at='time', updated_at='time', decided_at='time?'),
        foreign_keys={'artist_id': 'artists.id', 'creator_id': 'creators.id'},
        indexes={
            'ix_requests_artist_id': ('artist_id',),
            'ix_requests_creator_id': ('creator_id',),
            'ix_requests_status_due': ('status', 'decision_due_at'),
        }),
    Table('card_refs', dict(
        request_id='str32', channel='str16', recipient_id='str32', chat_id='str64', message_id='str64',
        created_at='time'),
        primary_key=('request_id', 'channel', 'recipient_id'),
        foreign_keys={'request_id': 'requests.id'}),
    Table('decisions', dict(
        id='str32', request_id='str32', actor_kind='str16', actor_id='str64', actor_display='str200',
        channel='str16', outcome='str16', terms_hash='str64', ai_training_confirmed='bool', reason='text?',
        created_at='time'),
        foreign_keys={'request_id': 'requests.id'},
        named_unique={'uq_decisions_request_actor': ('request_id', 'actor_kind')}),
    Table('grants', dict(
        id='str32', request_id='str32', creator_id='str32', artist_id='str32', status='str16',
        starts_at='time', ends_at='time', reminders_sent='int', receipt='json', revoked_at='time?',
        created_at='time', updated_at='time'),
        foreign_keys={'artist_id': 'artists.id', 'creator_id': 'creators.id', 'request_id': 'requests.id'},
        unique=('request_id',),
        indexes={
            'ix_grants_artist_id': ('artist_id',),
            'ix_grants_creator_id': ('creator_id',),
            'ix_grants_status_ends': ('status', 'ends_at'),
            'ix_grants_status_starts': ('status', 'starts_at'),
        }),
    Table('usage_events', dict(
        id='str32', grant_id='str32', creator_id='str32', artist_id='str32', kind='str16', count='int',
        note='text?', violation='bool', grant_status='str16', occurred_at='time', received_at='time'),
        foreign_keys={'grant_id': 'grants.id'},
        indexes={
            'ix_usage_artist_time': ('artist_id', 'occurred_at'),
            'ix_usage_grant_time': ('grant_id', 'occurred_at'),
        }),
    # The chain starts from a genesis hash of zeros; every append locks this row.
    Execute("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '" + "0" * 64 + "')"),
)
