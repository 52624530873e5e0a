"""Build of meshcore: the C core (strict warnings) + the Cython binding.

The C core under src/meshcore/ is compiled as a static library with
-Wall -Wextra -Werror; only the Cython-generated module is compiled with the
interpreter's own flags (generated code is not ours to hold to -Werror).
MESHCORE_SANITIZE=1 builds both with ASan + UBSan (load with
LD_PRELOAD=$(gcc -print-file-name=libasan.so)).

Build artifacts stay out of the source tree: objects, the static core and the
Cython-generated C go to MESHCORE_BUILD_DIR (default: a directory per source
tree under the system's temp dir, kept between builds so rebuilds are
incremental). Only the egg-info (git-ignored) is written beside the package.
"""
import glob
import hashlib
import os
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

SANITIZE = os.environ.get("MESHCORE_SANITIZE") == "1"
SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if SANITIZE else []
_HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.environ.get("MESHCORE_BUILD_DIR") or os.path.join(
    tempfile.gettempdir(), "meshcore-build-" + hashlib.sha1(_HERE.encode()).hexdigest()[:12]
    + ("-san" if SANITIZE else ""))

CORE_SOURCES = sorted(glob.glob("src/meshcore/**/*.c", recursive=True))
CORE_HEADERS = sorted(glob.glob("src/meshcore/**/*.h", recursive=True))
INCLUDE_DIRS = ["src/meshcore/include", "src/meshcore"]
CORE_CFLAGS = [
    "-std=gnu11", "-O2", "-g", "-pthread",
    "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
    "-Wno-missing-field-initializers",
] + SAN_FLAGS

core_lib = ("meshcore_core", {
    "sources": CORE_SOURCES,
    "include_dirs": INCLUDE_DIRS,
    "macros": [("_GNU_SOURCE", None)],
    "cflags": CORE_CFLAGS,
})

ext = Extension(
    "meshcore._core",
    sources=["ext/_core.pyx"],
    include_dirs=INCLUDE_DIRS + ["ext"],
    # The core first: with --as-needed, a shared library listed before the
    # static core that needs it would be dropped.
    libraries=["meshcore_core", "ssl", "crypto", "pcre2-8", "nghttp2", "pthread"],
    extra_compile_args=["-O2"] + SAN_FLAGS,
    extra_link_args=SAN_FLAGS,
    # build_ext relinks only when these are newer than the built module: the
    # static core it links is not among its sources, and a build directory
    # kept between builds (BUILD_DIR) would otherwise keep a stale core.
    depends=CORE_SOURCES + CORE_HEADERS,
)

setup(
    libraries=[core_lib],
    ext_modules=cythonize(
        [ext],
        include_path=["ext"],
        build_dir=os.path.join(BUILD_DIR, "cython"),
        compiler_directives={"language_level": 3},
    ),
    options={"build": {"build_base": BUILD_DIR}},
)
