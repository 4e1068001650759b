"""Documents for translation: sentence segmentation with byte-exact reassembly, markup and file formats."""
