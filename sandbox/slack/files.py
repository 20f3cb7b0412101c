"""Files as slack_sdk uploads them: an upload URL, the bytes posted to it, then the upload completed
into a channel or thread; and downloads with the bot token."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from sandbox.slack.methods import SlackWebApi
from sandbox.slack.rules import JSON, SlackError, new_id
from sandbox.slack.state import File


class SlackFiles(SlackWebApi):
    """The file upload methods and the upload and download URLs."""

    def _methods(self) -> dict[str, Callable[[JSON], JSON]]:
        return {
            **super()._methods(),
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    def _files_get_upload_url(self, params: JSON) -> JSON:
        filename = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc
        if not filename or length < 0:
            raise SlackError("invalid_arguments")
        key = secrets.token_urlsafe(16)
        file = File(id=new_id("F"), name=str(filename), length=length, created=time.time(), upload_key=key)
        self._files[file.id] = file
        self._uploads[key] = file.id
        return {"upload_url": f"{self.url}/upload/v1/{key}", "file_id": file.id}

    def _files_complete_upload(self, params: JSON) -> JSON:
        items = self._json_param(params, "files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        files: list[File] = []
        for item in items:
            file = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if file is None or file.data is None:
                raise SlackError("file_not_found")
            files.append(file)
        # slack_sdk sends channel_id for one channel, "channels" (comma separated) for several.
        channel_arg = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
        channel = self._resolve_channel(channel_arg) if channel_arg else None
        if channel_arg and channel is None:
            raise SlackError("channel_not_found")
        for item, file in zip(items, files, strict=True):
            file.title = str(item.get("title") or file.name)
        if channel is not None:
            msg = self._post(
                channel,
                str(params.get("initial_comment") or ""),
                None,
                thread_ts=params.get("thread_ts"),
                file_ids=[f.id for f in files],
            )
            for file in files:
                file.channel, file.thread_ts, file.message_ts = channel, msg.thread_ts, msg.ts
        return {"files": [f.slack_json(self.url, self.bot_user_id) for f in files]}

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        file_id = self._uploads.get(key)
        params: JSON = {"file_id": file_id}
        faulted = await self._apply_fault(request, "upload", params)
        if faulted is not None:
            return faulted
        if file_id is None:
            self._record("upload", params, 404, "unknown upload url")
            return web.Response(status=404, text="unknown upload url")
        if request.content_type.startswith("multipart/"):
            data = await self._first_multipart_file(request)
        else:
            data = await request.read()
        file = self._files[file_id]
        file.data = data
        params["length"] = len(data)
        text = f"OK - {len(data)}"
        self._record("upload", params, 200, text)
        return web.Response(text=text)

    @staticmethod
    async def _first_multipart_file(request: web.Request) -> bytes:
        reader = await request.multipart()
        fallback = b""
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read(decode=True)
            if part.filename or part.name in {"file", "filename"}:
                return bytes(data)
            fallback = fallback or bytes(data)
        return fallback

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if self._team_of_token(auth.removeprefix("Bearer ").strip()) is None:
            return web.Response(status=403, text="invalid_auth")
        file = self._files.get(request.match_info["file_id"])
        if file is None or file.data is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=file.data, content_type=file.mimetype)
