"""``python -m keras_zoo_plus``: the ``keras-zoo-plus`` command line."""

import sys

from keras_zoo_plus.cli import main

if __name__ == "__main__":
    sys.exit(main())
