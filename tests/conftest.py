import pytest

from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.params import Parameter
from starbatch.methods.emulator import Emulator
from starbatch.resources import EMULATOR
from starbatch.sdss.products import APSTAR


class MyAnalysisTask(Analysis):
    """The worked example of the batching semantics (docs/concepts.md): a and order
    significant, verbose not."""

    name = "MyAnalysisTask"
    product = APSTAR
    parameters = (
        Parameter("a", float, 1.0),
        Parameter("order", int, 3),
        Parameter("verbose", bool, False, significant=False),
    )
    columns = (Column("value", "", "a * order"),)

    def load(self, params):
        return {"loaded": params["a"]}

    def analyse(self, model, task):
        if task.spectrum.meta.get("objid", "").endswith("9"):
            raise RuntimeError("boom")
        return {"value": model["loaded"] * task.params["order"]}


@pytest.fixture
def registry():
    from starbatch.analyses.registry import BUILTIN

    return {**BUILTIN, MyAnalysisTask.name: MyAnalysisTask}


@pytest.fixture(scope="session")
def emulator():
    """The committed apStar-grid emulator (loaded once for the whole run)."""
    return Emulator.load(EMULATOR)
