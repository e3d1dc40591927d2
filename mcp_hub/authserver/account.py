"""`PUT /v1/me/password`: a user sets their own password for the sign-in page with their hub API key (an
admin sets anyone's with `mcp-hub users passwd NAME`)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mcp_hub.admin.routes import WriteOnlyInputRoute
from mcp_hub.auth.deps import HubDep, UserDep
from mcp_hub.authserver.passwords import set_password
from mcp_hub.errors import PermissionDeniedError
from mcp_hub.store import audit
from mcp_hub.store.engine import transaction

router = APIRouter(prefix="/v1", tags=["users"], route_class=WriteOnlyInputRoute)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: SecretStr = Field(description="your new sign-in password, 12 to 1024 characters (write-only)")


@router.put("/me/password", status_code=204)
async def set_my_password(body: PasswordIn, hub: HubDep, caller: UserDep) -> Response:
    """Sets the caller's password for the hub's OAuth sign-in page (MCP clients such as Claude or Cursor)."""
    if caller.allowed_servers is not None or caller.allowed_tools is not None:
        # A password signs in as the whole user: a key limited to some servers or tools must not be able
        # to mint one (the sign-in page refuses such keys for the same reason).
        raise PermissionDeniedError("a key limited to some servers or tools cannot set the password")
    async with transaction(hub.sessions) as session:
        await set_password(session, caller.user_id, body.password.get_secret_value())
        audit.record(session, caller, "user.password.set", target_type="user", target_id=caller.user_id)
    return Response(status_code=204)
