"""Static report-site generator for CNN interpretability (MkDocs Material).

From a notebook: ``report = generator.open("site_config.yaml")`` (see :mod:`generator.report`).
"""


def open(config="site_config.yaml", project=None):  # noqa: A001 (the notebook API's name: generator.open)
    """The report of ``config``, its results and figures through the build's cache (:mod:`generator.report`)."""
    from generator.report import open_report

    return open_report(config, project)
