"""diminish: reproduce and extend 'Diminishing Returns in Self-Supervised Learning'.

Importing the package changes nothing in the process: the OpenMP setting the command lines make
before torch loads is :func:`diminish.host.quiet_openmp`'s, called by their entry points.
"""

__version__ = "0.1.0"
