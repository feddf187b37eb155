"""Workloads more than one benchmark runs. Constants only, importing nothing: a worker that runs an
earlier version of the package (``redesign.py``) uses them too."""

PNG_BYTES = 20 * 2**20
#: One PNG of ``PNG_BYTES`` random bytes displayed: 26.7 MiB of base64 in one message.
PNG_CODE = (
    "import os\nfrom IPython.display import Image, display\n"
    f"display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom({PNG_BYTES} - 8), format='png'))"
)
