"""sklearn_brain: align fMRI responses with CLIP and AlexNet representations.

Every model is a scikit-learn estimator, so voxel selection, decoding and
hyperparameter search compose in a :class:`~sklearn.pipeline.Pipeline` and
run inside cross-validation folds without leaking test data.
"""

__version__ = "0.1.0.dev0"

from . import metrics  # noqa: E402
from .contrastive import MultiSubjectContrastiveDecoder  # noqa: E402
from .decoding import RidgeDecoder  # noqa: E402
from .multimodal import BlockwiseDecoder  # noqa: E402
from .preprocessing import SubjectStandardScaler  # noqa: E402
from .selection import EncodingVoxelSelector  # noqa: E402

__all__ = ["BlockwiseDecoder", "EncodingVoxelSelector", "MultiSubjectContrastiveDecoder",
           "RidgeDecoder", "SubjectStandardScaler", "metrics", "__version__"]

from .cltuned import CLTunedAlexNet  # noqa: E402
from .encoding import LayerPCA, VoxelwiseEncoder  # noqa: E402

__all__ += ["CLTunedAlexNet", "LayerPCA", "VoxelwiseEncoder"]
