"""Load balancers with the proxy's own policies (meshcore.balance).

Each picker holds one cluster's worth of the sidecar's balancing state and
picks with its C code (src/meshcore/route/picker.c): ``WeightedPicker``
(smooth weighted round robin, deterministic: the proxy's weighted clusters
and default endpoint policy), ``LeastRequestPicker``, ``RingHashPicker``
(Envoy's ring, keys hashed as the proxy's hash policies hash them) and
``RandomPicker``. Build one from ``{key: weight}`` (or a list of weights;
picks are then indexes); ``pick()`` returns a key; ``set_weights`` /
``set_weight`` change weights in place; ``mark(key, healthy)`` takes an
endpoint out until every endpoint is out (the proxy's panic).
"""
from meshcore._core import LeastRequestPicker, RandomPicker, RingHashPicker, WeightedPicker, key_hash

__all__ = ["LeastRequestPicker", "RandomPicker", "RingHashPicker", "WeightedPicker", "key_hash"]
