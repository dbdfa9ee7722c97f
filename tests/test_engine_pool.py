"""The server's engine pool (#31): a ladder's engine stays while a connected visitor uses it, a
while after one switched away, and goes once its visitors have left; the first screen's engine
always stays. Driven with a hand clock and a hand list of connected sessions."""
from __future__ import annotations

import gc
import threading
import weakref

from app.engines import EnginePool


class Engine:
    """Stands for a loaded engine; the test only needs to see whether it is still alive."""

    def __init__(self, name: str) -> None:
        self.name = name


class World:
    def __init__(self) -> None:
        self.now = 0.0
        self.connected: set[str] = set()
        self.loads: list[str] = []

    def loader(self, name: str):
        def load() -> Engine:
            self.loads.append(name)
            return Engine(name)
        return load


def make_pool(world: World, capacity: int = 6) -> EnginePool:
    return EnginePool(keep=lambda key: key == "table7", is_active=world.connected.__contains__,
                      capacity=capacity, grace_s=60.0, clock=lambda: world.now)


def test_a_ladder_engine_is_shared_kept_while_used_and_released_when_its_visitors_leave():
    world = World()
    pool = make_pool(world)
    world.connected |= {"a", "b"}
    first = pool.get("table7", "a", world.loader("table7"))
    resnet = pool.get("resnet", "b", world.loader("resnet"))
    assert pool.get("resnet", "a", world.loader("resnet")) is resnet  # shared, loaded once
    assert world.loads == ["table7", "resnet"]

    world.now = 500.0  # both visitors still connected, idle for minutes: nothing goes
    assert pool.sweep() == []
    world.connected.discard("a")
    world.now = 600.0  # "b" still has it picked
    assert pool.sweep() == []

    world.connected.discard("b")  # the last visitor who used it left: no grace to wait for
    world.now = 601.0
    released = weakref.ref(resnet)
    del resnet
    assert pool.sweep() == ["resnet"]
    gc.collect()
    assert released() is None  # nothing else held it: its memory can go back
    assert pool.held() == ["table7"]  # the first screen's engine stays with nobody connected
    assert pool.get("table7", "c", world.loader("table7")) is first


def test_switching_away_keeps_the_engine_for_the_grace_then_lets_it_go():
    world = World()
    pool = make_pool(world)
    world.connected.add("a")
    pool.get("resnet", "a", world.loader("resnet"))
    world.now = 10.0
    pool.get("table7", "a", world.loader("table7"))  # the visitor switched back to Table 7
    world.now = 69.0  # 59 s after its last use
    assert pool.sweep() == []
    pool.get("resnet", "a", world.loader("resnet"))  # and back again: no reload
    assert world.loads == ["resnet", "table7"]
    pool.get("table7", "a", world.loader("table7"))
    world.now = 129.0  # 60 s after the last use of resnet, picked by nobody
    assert pool.sweep() == ["resnet"]
    pool.get("resnet", "a", world.loader("resnet"))
    assert world.loads == ["resnet", "table7", "resnet"]  # loaded again when asked again


def test_a_visitor_who_switched_away_and_left_takes_the_grace_with_them():
    world = World()
    pool = make_pool(world)
    world.connected |= {"a"}
    pool.get("resnet", "a", world.loader("resnet"))
    world.now = 5.0
    pool.get("table7", "a", world.loader("table7"))
    world.now = 10.0
    assert pool.sweep() == []  # "a" may switch back within the grace
    world.connected.discard("a")
    world.now = 20.0
    assert pool.sweep() == ["resnet"]  # nobody connected used it: no reason to wait


def test_over_capacity_the_least_recently_used_releasable_engine_goes():
    world = World()
    pool = make_pool(world, capacity=2)
    world.connected.add("a")
    pool.get("table7", "a", world.loader("table7"))
    world.now = 1.0
    pool.get("resnet", "a", world.loader("resnet"))
    world.now = 2.0
    pool.get("compound", "a", world.loader("compound"))
    assert sorted(pool.held()) == ["compound", "table7"]  # never the first screen's


def test_over_capacity_an_engine_a_session_has_picked_stays():
    world = World()
    pool = make_pool(world, capacity=2)
    world.connected |= {"a", "b"}
    pool.get("table7", "a", world.loader("table7"))
    world.now = 1.0
    pool.get("resnet", "a", world.loader("resnet"))  # "a" is looking at it
    world.now = 2.0
    pool.get("compound", "b", world.loader("compound"))
    assert sorted(pool.held()) == ["compound", "resnet", "table7"]  # a soft bound


def test_two_sessions_asking_at_once_load_the_engine_once():
    world = World()
    pool = make_pool(world)
    started, finish = threading.Event(), threading.Event()

    def slow_load() -> Engine:
        started.set()
        finish.wait(5)
        return world.loader("resnet")()

    got: list[Engine] = []
    first = threading.Thread(target=lambda: got.append(pool.get("resnet", "a", slow_load)))
    first.start()
    started.wait(5)
    second = threading.Thread(
        target=lambda: got.append(pool.get("resnet", "b", world.loader("resnet"))))
    second.start()
    finish.set()
    first.join(5)
    second.join(5)
    assert world.loads == ["resnet"] and len(got) == 2 and got[0] is got[1]
