"""Installs the memdeblur package (the BasicSR plugin) and its commands (``memdeblur.cli``); options/ and tools/
stay in the checkout."""
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
    packages=find_packages(include=['memdeblur', 'memdeblur.*']),
    python_requires='>=3.9',
    install_requires=[r for r in read_requirements() if r != 'pytest'],
    extras_require={
        'onnx': ['onnx', 'onnxruntime'],
        'openvino': ['openvino', 'onnx'],
        'test': ['pytest', 'onnx', 'onnxruntime', 'openvino'],  # CI runs the export and backend tests too
    },
    entry_points={'console_scripts': [
        'memdeblur-video = memdeblur.cli.deblur_video:run',
        'memdeblur-test = memdeblur.cli.test:run',
        'memdeblur-train = memdeblur.cli.train:run',
        'memdeblur-export = memdeblur.cli.export_onnx:run',
        'memdeblur-compare = memdeblur.cli.compare:run',
    ]},
    license='Apache-2.0',
)
