"""The BentoML version churnops' fixes of BentoML internals were written for.

bentoml_timeout, bentoml_paths and bentoml_predict_first patch private parts of this
version; on any other they leave BentoML as it is and say so (tests/code fails then).
"""

from __future__ import annotations

import logging

import bentoml

logger = logging.getLogger(__name__)

PATCHED_FOR_BENTOML = "1.4.40"


def pinned(unfixed: str) -> bool:
    """Whether the installed BentoML is the patched-for one; if not, log what stays `unfixed`."""
    if bentoml.__version__ == PATCHED_FOR_BENTOML:
        return True
    logger.warning("BentoML %s, not %s: %s", bentoml.__version__, PATCHED_FOR_BENTOML, unfixed)
    return False
