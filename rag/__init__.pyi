# The public names of `rag` for type checkers and editors (rag/__init__.py imports them on first use).
from rag.api.answers import PatternAnswer as PatternAnswer
from rag.api.answers import RelatedAnswer as RelatedAnswer
from rag.api.answers import SimilarAnswer as SimilarAnswer
from rag.api.client import Client as Client
from rag.api.client import ServerError as ServerError
from rag.api.client import ServerUnreachable as ServerUnreachable
from rag.api.library import Library as Library
from rag.api.local import Index as Index
from rag.api.local import open_index as open_index
from rag.errors import IndexError_ as IndexError_
from rag.errors import InputError as InputError
from rag.errors import PatternNotFound as PatternNotFound
from rag.errors import QueryError as QueryError
from rag.errors import RagError as RagError
from rag.errors import UnknownFilterValue as UnknownFilterValue
from rag.records.filters import Filters as Filters
from rag.records.pattern import Pattern as Pattern
from rag.records.results import Evidence as Evidence
from rag.records.results import Hit as Hit
from rag.records.results import Results as Results
from rag.search.browse import PatternBrief as PatternBrief
from rag.search.browse import PatternPage as PatternPage
from rag.search.context import ContextPack as ContextPack
from rag.search.context import Passage as Passage
from rag.search.filters import Facets as Facets
from rag.search.graph import RelatedPattern as RelatedPattern
from rag.search.graph import SimilarPattern as SimilarPattern

__version__: str
__all__: list[str]
