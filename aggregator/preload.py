"""What every worker process needs, loaded once by the server process they
are forked from (:func:`aggregator.prepare.pool`): the preparing code, and
the bundled classifier, built."""

from . import prepare  # noqa: F401  (the functions the workers run)
from .classify import default_gazetteer

default_gazetteer()
