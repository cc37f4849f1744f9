"""A stand-in for Keras that records the graph a builder makes (tests only)."""
import types


class FakeTensor:
    def __init__(self, layer, inputs):
        self.layer, self.inputs = layer, inputs


class FakeLayer:
    def __init__(self, kind, args, kwargs, graph):
        self.kind, self.args, self.kwargs = kind, args, kwargs
        self.graph = graph

    def __call__(self, x):
        self.graph.append(self)
        return FakeTensor(self, x)


class FakeModel:
    instances = []

    def __init__(self, inputs, outputs, name=None):
        self.inputs, self.outputs, self.name = inputs, outputs, name
        self.compiled, self.fits = None, []
        FakeModel.instances.append(self)

    def compile(self, **kw):
        self.compiled = kw

    def fit(self, x, y, **kw):
        assert len(x) == 2 and len(x[0]) == len(x[1]) == len(y)
        self.fits.append((len(y), kw))


def make_fake_keras():
    graph = []

    class Layers:
        def __getattr__(self, kind):
            return lambda *a, **k: FakeLayer(kind, a, k, graph)

    fake = types.SimpleNamespace(
        __version__="3.fake", graph=graph, layers=Layers(), Model=FakeModel,
        Input=lambda shape, dtype=None, name=None: FakeTensor(("input", name), None),
        optimizers=types.SimpleNamespace(Adam=lambda **kw: ("adam", kw)),
        initializers=types.SimpleNamespace(RandomUniform=lambda lo, hi: ("uniform", lo, hi),
                                           RandomNormal=lambda mean, stddev: ("normal", stddev)),
        regularizers=types.SimpleNamespace(l2=lambda c: ("l2", c)),
        utils=types.SimpleNamespace(set_random_seed=lambda s: None),
        backend=types.SimpleNamespace(backend=lambda: "fake"),
    )
    FakeModel.instances.clear()
    return fake
