"""Image and text featurizers: CLIP, AlexNet and GIT captions as sklearn transformers.

The deep-learning dependencies (torchvision, open_clip, transformers) are
imported only when a featurizer is fitted; install them with
``pip install "sklearn-brain[features]"``.
"""

from ._alexnet import AlexNetFeaturizer
from ._caption import ImageCaptioner
from ._clip import CLIPFeaturizer

__all__ = ["AlexNetFeaturizer", "CLIPFeaturizer", "ImageCaptioner"]
