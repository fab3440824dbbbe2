"""What routes depend on: the node's services, the store session, and who is calling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from node.api.guard import PRINCIPAL_STATE
from node.auth import Principal, Role
from node.errors import Refusal, Refused
from node.services import Services


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def read_session(svc: ServicesDep) -> Iterator[Session]:
    with svc.store.transaction(write=False) as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]


bearer = HTTPBearer(
    scheme_name="apiKey",
    auto_error=False,
    description="Your bank's API key (or the operator's, or the auditor's): `Authorization: Bearer <key>`",
)


def principal(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None
) -> Principal:
    """Who is calling: authenticated by the guard (:mod:`node.api.guard`) before the body was read."""
    found: Principal | None = getattr(request.state, PRINCIPAL_STATE, None)
    if found is None:
        raise Refused(Refusal.UNAUTHORIZED, "send your API key as 'Authorization: Bearer <key>'")
    return found


CurrentPrincipal = Annotated[Principal, Depends(principal)]


def _only(role: Role, refusal: str) -> Callable[[Principal], Principal]:
    def check(who: CurrentPrincipal) -> Principal:
        if who.role is not role:
            raise Refused(Refusal.FORBIDDEN, refusal)
        return who

    return check


bank = _only(Role.BANK, "this route is for banks' API keys")
operator = _only(Role.OPERATOR, "this route needs the operator's API key")
auditor = _only(Role.AUDITOR, "this route needs the auditor's API key")


def reader(who: CurrentPrincipal) -> Principal:
    """A bank (its own data) or the auditor (everything)."""
    if who.role is Role.OPERATOR:
        raise Refused(Refusal.FORBIDDEN, "use a bank's or the auditor's API key")
    return who


def auditor_or_operator(who: CurrentPrincipal) -> Principal:
    if who.role not in (Role.AUDITOR, Role.OPERATOR):
        raise Refused(Refusal.FORBIDDEN, "this route needs the auditor's or the operator's API key")
    return who


CurrentBank = Annotated[Principal, Depends(bank)]
AuditorOrOperator = Annotated[Principal, Depends(auditor_or_operator)]
Auditor = Annotated[Principal, Depends(auditor)]
Operator = Annotated[Principal, Depends(operator)]
Reader = Annotated[Principal, Depends(reader)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description=(
            "makes a retried POST safe: the same key and body replay the first response, for 24 hours "
            "(the node's idempotency_ttl_s); after that the key is forgotten"
        ),
    ),
]


async def raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
