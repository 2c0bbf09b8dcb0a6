"""Networks: Gaussian policies, value/Q MLPs and the latent world model."""
from .layers import Normalizer, mlp
from .policy import GaussianPolicy, QNetwork, ValueNetwork
from .world_model import WorldModel

__all__ = ["GaussianPolicy", "Normalizer", "QNetwork", "ValueNetwork", "WorldModel", "mlp"]
