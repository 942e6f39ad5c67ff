"""Declared roles: an incomplete role fails at start, never degrades silently."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from workers.roles import ROLE_NAMES, Area, MissingDependency, check_role, get_role


def _module(name: str, area: Area | None, wire: object = None) -> str:
    m = types.ModuleType(name)
    if area is not None:
        m.AREA = area  # type: ignore[attr-defined]
    m.wire = wire or (lambda core: None)  # type: ignore[attr-defined]
    sys.modules[name] = m
    return name


def test_shipped_roles_are_complete() -> None:
    for name in ("main", "media"):
        role = get_role(name)
        assert role.name == name
        check_role(name, role.modules)
    assert "event_persister" in ROLE_NAMES


def test_unknown_role() -> None:
    with pytest.raises(KeyError):
        get_role("nope")
    with pytest.raises(KeyError):
        get_role("../main")


def test_need_without_provider_fails_at_check() -> None:
    a = _module("t_roles_a", Area("a", provides=("x",)))
    b = _module("t_roles_b", Area("b", needs=("x", "y")))
    with pytest.raises(MissingDependency, match="needs core.y"):
        check_role("r", [a, b])
    with pytest.raises(MissingDependency, match="needs core.x"):
        check_role("r", [b, a])  # order matters: providers come first


def test_core_refuses_undeclared_reads_while_wiring() -> None:
    from workers.core import Core

    core = Core.__new__(Core)
    core.__dict__.update(role="r", _area=None, _providers={"rooms": "rooms_area"})
    with core.wiring(Area("a", uses=("maybe",), provides=())):
        assert getattr(core, "maybe", None) is None  # declared optional: absent is fine
        with pytest.raises(MissingDependency, match="reads core.rooms before area 'rooms_area'"):
            getattr(core, "rooms", None)  # provided by a later area: getattr's default cannot hide it
        assert getattr(core, "from_an_undeclared_area", None) is None  # no declared provider: logged, allowed
    assert getattr(core, "rooms", None) is None  # outside wiring: ordinary attribute semantics


def test_area_must_set_what_it_provides() -> None:
    from workers.core import Core

    core = Core.__new__(Core)
    core.__dict__.update(role="r", _area=None)
    with pytest.raises(MissingDependency, match="provides core.thing"):
        with core.wiring(Area("a", provides=("thing",))):
            pass
    with core.wiring(Area("a", provides=("thing",))):
        core.thing = 1


def test_main_role_wires_every_area() -> None:
    """The all-in-one process must not lose an area (a role check cannot see an area nobody needs)."""
    import os

    import workers.wiring

    folder = os.path.dirname(workers.wiring.__file__)
    areas = {f"workers.wiring.{f[:-3]}" for f in os.listdir(folder) if f.endswith(".py") and f != "__init__.py"}
    assert areas - set(get_role("main").modules) == set()


def test_every_schedules_a_job_only_where_the_role_runs_it() -> None:
    """``core.every(job, fn, interval)``: a startup hook that loops ``fn`` under the job's name, first run one
    interval after start, and nothing at all in a role that does not run the job."""
    from workers.core import Core
    from workers.roles import Role

    class Background:
        def __init__(self) -> None:
            self.loops: list[tuple[Any, ...]] = []

        def looping(self, *args: Any, **kwargs: Any) -> None:
            self.loops.append((*args, kwargs))

    def job() -> None:
        return None

    core = Core.__new__(Core)
    clock = object()
    background = Background()
    core.__dict__.update(role_spec=Role("r", (), jobs=("mine",)), deployment=None, clock=clock, background=background,
                         _area=None, _startup_hooks=[])
    core.every("mine", job, 60.0)
    core.every("not_mine", job, 60.0)
    assert len(core.startup_hooks) == 1
    assert background.loops == []  # nothing runs before listeners are up
    core.startup_hooks[0]()
    assert background.loops == [("mine", job, 60.0, clock, {"now": False})]
