"""Documents: text cut into sentences and put back byte for byte (``segmentation``), text and HTML split into
units for the model and rebuilt exactly (``markup``), and files of the supported formats translated through
their own libraries (``files``). Core: the server and the CLI both use it."""
