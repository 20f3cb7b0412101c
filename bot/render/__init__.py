"""What each audience reads: `telegram` and `telegram_cards` for artists and studios, `slack` for
agencies' boards, `words` for the wording and languages they share, `buttons` for the button data
that comes back."""
