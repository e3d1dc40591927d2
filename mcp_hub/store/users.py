"""Repository of users and their API keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_hub.auth.keys import NewKey, generate_api_key
from mcp_hub.errors import ConflictError, InvalidInputError, NotFoundError
from mcp_hub.store.models import ApiKey, User, utcnow


async def create_user(session: AsyncSession, name: str, email: str | None = None) -> User:
    user = User(name=name, email=email, disabled=False)
    session.add(user)
    await _flush_unique(session, f"a user named {name!r} already exists")
    return user


async def _flush_unique(session: AsyncSession, message: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise ConflictError(message) from None


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user with id {user_id!r}")
    return user


async def get_user_by_name(session: AsyncSession, name: str) -> User:
    user = await session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


async def update_user(
    session: AsyncSession, user: User, *, name: str | None, email: str | None, disabled: bool | None
) -> User:
    if name is not None:
        user.name = name
    if email is not None:
        user.email = email
    if disabled is not None:
        user.disabled = disabled
    await _flush_unique(session, f"a user named {name!r} already exists")
    return user


async def list_users(session: AsyncSession, *, limit: int, after: str | None = None) -> list[User]:
    query = select(User).order_by(User.id).limit(limit)
    if after:
        query = query.where(User.id > after)
    return list((await session.scalars(query)).all())


async def delete_user(session: AsyncSession, user: User) -> None:
    await session.delete(user)
    await session.flush()


async def create_key(
    session: AsyncSession,
    user: User,
    *,
    name: str | None = None,
    is_admin: bool = False,
    allowed_servers: list[str] | None = None,
    allowed_tools: list[str] | None = None,
) -> tuple[ApiKey, NewKey]:
    new_key = generate_api_key()
    key = ApiKey(
        user_id=user.id,
        name=name,
        prefix=new_key.prefix,
        key_hash=new_key.key_hash,
        is_admin=is_admin,
        allowed_servers=allowed_servers,
        allowed_tools=allowed_tools,
    )
    session.add(key)
    await session.flush()
    return key, new_key


async def get_key(session: AsyncSession, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"no API key with id {key_id!r}")
    return key


async def get_key_by_prefix(session: AsyncSession, prefix: str) -> ApiKey:
    if len(prefix) < 6:
        raise InvalidInputError("give at least 6 characters of the key prefix")
    keys = list(
        (
            await session.scalars(
                select(ApiKey).where(ApiKey.prefix.startswith(prefix, autoescape=True)).limit(2)
            )
        ).all()
    )
    if not keys:
        raise NotFoundError(f"no API key with prefix {prefix!r}")
    if len(keys) > 1:
        raise InvalidInputError(f"prefix {prefix!r} matches several keys; give more characters")
    return keys[0]


async def list_keys(
    session: AsyncSession, *, limit: int, after: str | None = None, user_id: str | None = None
) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if after:
        query = query.where(ApiKey.id > after)
    if user_id:
        query = query.where(ApiKey.user_id == user_id)
    return list((await session.scalars(query)).all())


async def revoke_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key
