"""The site configuration: the typed sections of ``site_config.yaml`` and their loading.

:mod:`~generator.config.sections` holds the typed data (pydantic validates it on loading),
:mod:`~generator.config.loading` reads a file, :mod:`~generator.config.messages` turns pydantic's
errors into one-line messages, :mod:`~generator.config.files` checks the files a config names,
:mod:`~generator.config.schema` writes the JSON Schema, :mod:`~generator.config.directions` parses
``exciters.directions``. The names other modules use are re-exported here.
"""

from generator.config.files import image_files, list_images, read_text, resolve_path
from generator.config.loading import load_config, parse_config, with_site_url
from generator.config.sections import (
    ATTRIBUTION_METHODS, EXCITER_METHODS, AttributionSection, BrowseSection, CircuitsSection, ClassesSection, Config,
    ExciterGridSection, ExciterParams, ExcitersSection, FeatureMapsSection, GroupsSection, ImagesSection,
    ModelSection, NotesSection, SiteSection, UnitSection, ViewsSection,
)

__all__ = [
    "ATTRIBUTION_METHODS", "EXCITER_METHODS", "AttributionSection", "BrowseSection", "CircuitsSection", "ClassesSection",
    "Config",
    "ExciterGridSection", "ExciterParams", "ExcitersSection", "FeatureMapsSection", "GroupsSection", "ImagesSection",
    "ModelSection", "NotesSection", "SiteSection", "UnitSection", "ViewsSection", "image_files", "list_images",
    "load_config", "parse_config", "read_text", "resolve_path", "with_site_url",
]
