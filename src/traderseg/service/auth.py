"""Who is calling: the API key of a request, its role checked against the route's rule.

No key or a key that does not verify -> 401; a role the route's rule does not list -> 403;
the key's venue is the only store the request can open (another venue's account is then
simply not there: 404, the same as an account that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from traderseg.service.access import allowed
from traderseg.service.keys import ApiKey
from traderseg.service.state import ServiceState, VenueState

bearer = HTTPBearer(auto_error=False, scheme_name="api_key",
                    description="An API key from `traderseg keys create`: "
                    "`Authorization: Bearer tsk_...`.")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


@dataclass(frozen=True)
class Caller:
    """The verified key of a request and the venue it is bound to."""

    key: ApiKey
    venue: VenueState

    @property
    def role(self) -> str:
        """The key's role."""
        return self.key.role

    def may(self, route: str) -> bool:
        """Whether the caller's role may use ``route`` (for role-gated parts)."""
        return allowed(self.key.role, route)


def service_state(request: Request) -> ServiceState:
    """Return the state of the app serving ``request``."""
    state: ServiceState = request.app.state.service
    return state


def route_name(request: Request) -> str:
    """Name of the route serving ``request`` (its access rule's key)."""
    route = request.scope.get("route")
    return str(getattr(route, "name", ""))


def authorise(state: ServiceState, key: ApiKey | None, route: str) -> Caller:
    """Check a verified key (or ``None``) against ``route``'s rule.

    Raises
    ------
    fastapi.HTTPException
        401 without a valid key, 403 for a role the rule does not list or a venue this
        service does not serve.
    """
    if key is None:
        raise HTTPException(401, "a valid API key is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not allowed(key.role, route):
        raise HTTPException(403, f"role {key.role} may not use {route}")
    venue = state.venues.get(key.venue)
    if venue is None:
        raise HTTPException(403, f"venue {key.venue} is not served here")
    return Caller(key, venue)


async def api_caller(request: Request, creds: Credentials) -> Caller:
    """FastAPI dependency of every ``/v1`` route: the verified, authorised caller.

    It runs on the event loop: a key already verified is checked with one keyed hash,
    and only the first, slow check of a key (scrypt) is sent to the thread pool.
    """
    state = service_state(request)
    key = None
    if creds is not None:
        key = state.keys.verify_known(creds.credentials)
        if key is None:
            key = await run_in_threadpool(state.keys.verify, creds.credentials)
    caller = authorise(state, key, route_name(request))
    request.state.actor = caller.key.actor
    return caller
