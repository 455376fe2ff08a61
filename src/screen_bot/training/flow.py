"""The dialog's flow drawn from the very transitions the engine runs.

A ``GraphMachine`` is built from ``engine.states`` and ``engine.transitions``; the
conditions keep their readable ``__name__`` ("asked when sex == 'female'", "a criterion
failed"). The ``restart`` event, which leads from every state back to the first
question, is left out so the picture shows the path through the questions, and so are the
steps no answers take (:func:`~.reach.untaken`): a "next" edge past a question that must
then be asked, an early exit after a question at which no criterion can fail yet.
"""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any, Literal

from transitions import State
from transitions.extensions.diagrams import GraphMachine

from ..engine import BaseEngine, Engine
from ..errors import ScreenBotError
from .reach import untaken

ImageFormat = Literal["png", "svg"]
NOT_DRAWN = ("restart",)


class GraphUnavailable(ScreenBotError):
    """PNG/SVG needs Graphviz; the message says what is missing and how to get it."""


class _LabelledState(State):
    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if label:
            self.label = label


class _FlowMachine(GraphMachine):
    state_cls = _LabelledState
    machine_attributes = {**GraphMachine.machine_attributes, "rankdir": "TB"}


class _Model:
    """A throw-away model: transitions draws the graph of a model."""


def _graph(engine: BaseEngine[Any], graph_engine: Literal["graphviz", "mermaid"]) -> Any:
    order = engine.protocol.order
    states = [
        {"name": s, "label": f"{order.index(s) + 1}. {s}" if s in order else s.upper()}
        for s in engine.states
    ]
    # Every "next" edge also holds "unless a criterion failed": drawn once, as the early
    # exit to not_eligible, rather than on every edge.
    never = untaken(engine.protocol) if isinstance(engine, Engine) else frozenset()
    transitions = [
        {k: v for k, v in t.items() if k != "unless"}
        for t in engine.transitions
        if t["trigger"] not in NOT_DRAWN and (t["source"], t["dest"]) not in never
    ]
    model: Any = _Model()  # transitions adds get_graph to it
    prefix = "title: " if graph_engine == "mermaid" else ""  # Mermaid's front matter is YAML
    machine = _FlowMachine(
        model=model,
        states=states,
        transitions=transitions,
        initial=order[0],
        auto_transitions=False,
        show_conditions=True,
        graph_engine=graph_engine,
        title=f"{prefix}{engine.protocol.id} {engine.protocol.version} dialog flow",
    )
    machine.model_graphs[id(model)].reset_styling()  # no state is "active" in a map
    return model.get_graph()


def mermaid(engine: BaseEngine[Any]) -> str:
    """The flow as Mermaid ``stateDiagram-v2`` text (no system package needed)."""
    return str(_graph(engine, "mermaid").source)


def missing_for_images() -> str | None:
    """What PNG/SVG output lacks here, or None when Graphviz is ready."""
    missing = []
    if importlib.util.find_spec("graphviz") is None:
        missing.append("the Python package 'graphviz' (pip install graphviz)")
    if shutil.which("dot") is None:
        missing.append("the Graphviz 'dot' program (Debian/Ubuntu: apt-get install graphviz)")
    if not missing:
        return None
    return "PNG/SVG output needs " + " and ".join(missing) + "; --format mermaid needs neither"


def image(engine: BaseEngine[Any], fmt: ImageFormat = "png") -> bytes:
    """The flow rendered by Graphviz ``dot``; raises :class:`GraphUnavailable` without it."""
    problem = missing_for_images()
    if problem:
        raise GraphUnavailable(problem)
    import graphviz  # optional: only PNG/SVG need it

    try:
        return bytes(_graph(engine, "graphviz").pipe(format=fmt))
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as err:
        raise GraphUnavailable(f"Graphviz 'dot' failed: {err}") from None


def png(engine: BaseEngine[Any]) -> bytes:
    """PNG bytes of the flow, e.g. for a Telegram photo."""
    return image(engine, "png")
