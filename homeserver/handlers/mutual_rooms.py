"""``GET /_matrix/client/v1/mutual_rooms``: rooms both users are joined to, in pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.api.errors import Codes, MatrixError
from homeserver.types.ids import InvalidId, UserID

PAGE_SIZE = 100


def _bad(msg: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, msg)


class MutualRoomsHandler:
    def __init__(self, joined_rooms: Callable[[str], Awaitable[list[str]]], page_size: int = PAGE_SIZE) -> None:
        self.joined_rooms = joined_rooms
        self.page_size = page_size

    async def mutual_rooms(self, requester_user_id: str, user_id: str | None, from_token: str | None) -> dict[str, Any]:
        if not user_id:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing user_id")
        try:
            UserID.parse(user_id)
        except InvalidId:
            raise _bad("The user ID provided was invalid") from None
        if user_id == requester_user_id:
            raise _bad("You cannot ask for rooms shared with yourself")
        # The token is the last room id of the previous page (rooms are returned in id order).
        if from_token is not None and (not from_token.startswith("!") or len(from_token) > 255):
            raise _bad("Invalid or expired 'from' token")
        mine = set(await self.joined_rooms(requester_user_id))
        theirs = set(await self.joined_rooms(user_id))
        shared = sorted(mine & theirs)
        page = [r for r in shared if from_token is None or r > from_token][: self.page_size]
        out: dict[str, Any] = {"joined": page, "count": len(shared)}
        if page and page[-1] != shared[-1]:
            out["next_batch"] = page[-1]
        return out
