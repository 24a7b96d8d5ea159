"""Installs the memdeblur package (the BasicSR plugin); tools/ and options/ run from the checkout."""
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
    extras_require={'test': ['pytest']},
    license='Apache-2.0',
)
