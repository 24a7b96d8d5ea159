"""Installs the memdeblur package (the BasicSR plugin) and its commands; options/ stays in the checkout.

The tools in ``tools/`` are installed as the package ``memdeblur_tools`` (never as a top-level ``tools``, a name
other projects use too), so that the commands below work after ``pip install .`` as after ``pip install -e .``;
``memdeblur.console`` runs each tool as ``python tools/<tool>.py`` does, in the current folder.
"""
from setuptools import find_packages, setup


def read_requirements():
    with open('requirements.txt') as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def read_version():
    namespace = {}
    with open('memdeblur/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='memdeblur',
    version=read_version(),
    description='Multi-Scale Memory-Based Video Deblurring (CVPR 2022) as a BasicSR plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['memdeblur', 'memdeblur.*']) + ['memdeblur_tools'],
    package_dir={'memdeblur_tools': 'tools'},
    python_requires='>=3.9',
    install_requires=[r for r in read_requirements() if r != 'pytest'],
    extras_require={
        'onnx': ['onnx', 'onnxruntime'],
        'openvino': ['openvino', 'onnx'],
        'test': ['pytest', 'onnx', 'onnxruntime', 'openvino'],  # CI runs the export and backend tests too
    },
    entry_points={'console_scripts': [
        'memdeblur-video = memdeblur.console:deblur_video',
        'memdeblur-test = memdeblur.console:test',
        'memdeblur-train = memdeblur.console:train',
        'memdeblur-export = memdeblur.console:export_onnx',
        'memdeblur-compare = memdeblur.console:compare',
    ]},
    license='Apache-2.0',
)
