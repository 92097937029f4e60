"""Class names of the two labelled datasets, in label order (no torch, no I/O).

* Tri-map classes: the Oxford-IIIT Pet tri-map values 1/2/3 become labels 0/1/2 (``readers``
  does the remapping), in the order pet, background, border.
* Intel classes: alphabetical, the folder names of the Kaggle archive; a folder's position here is
  its label.

The models, the readers, the results schema and the figures all take the names from here.
"""

TRIMAP_CLASSES = ("pet", "background", "border")
INTEL_CLASSES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
