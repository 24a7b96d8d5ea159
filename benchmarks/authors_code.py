"""The authors' code as the benchmarks' reference: their ``Model`` class from a checkout of their repository
(``--authors-repo``), facts of a run, not code of ours."""
import os.path as osp
import sys


def authors_model_class(repo):
    """Their ``model.model.Model`` from the checkout at ``repo``, constructible without network access: their
    memory encoders start from ImageNet ResNet weights fetched when built, so ``torch.utils.model_zoo.load_url``
    answers with torchvision's untrained ResNet of the URL's kind instead (the benchmarks replace every weight)."""
    import torch.utils.model_zoo
    import torchvision

    sys.path.insert(0, osp.abspath(repo))
    torch.utils.model_zoo.load_url = lambda url, *args, **kwargs: getattr(
        torchvision.models, 'resnet18' if 'resnet18' in url else 'resnet50')().state_dict()
    from model.model import Model
    return Model
