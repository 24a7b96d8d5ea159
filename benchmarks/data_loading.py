"""Training clips per second from image folders, the BasicSR LMDB and the ESTRNN LMDB.

    python benchmarks/data_loading.py [--frames 16 --height 360 --width 640 --clips 60]

Makes a synthetic GOPRO-layout set in a temporary folder, converts it to both LMDB formats,
then times ``VideoDeblurDataset`` items (8-frame clips, 256x256 crops, flips and rotations, in
the main process) from each backend, interleaving the backends over several rounds so machine
noise hits all alike. Prints a Markdown table; speeds are also given relative to the folder
backend, the number that carries over between machines.
"""
import argparse
import os.path as osp
import tempfile
import time

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from basicsr.data import build_dataset

from memdeblur.data.prepare import write_basicsr_lmdb, write_estrnn_lmdb
from memdeblur.data.synthetic import write_synthetic_gopro


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sequences', type=int, default=2)
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--height', type=int, default=360)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--clips', type=int, default=30, help='clips per backend per round')
    parser.add_argument('--rounds', type=int, default=3)
    return parser.parse_args()


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gopro = osp.join(tmp, 'GOPRO')
        write_synthetic_gopro(gopro, {'train': args.sequences}, args.frames, args.height, args.width)
        split = osp.join(gopro, 'train')
        write_basicsr_lmdb(split, osp.join(tmp, 'lmdb'), blur_dirs=('blur_gamma', ))
        write_estrnn_lmdb(split, osp.join(tmp, 'estrnn'), 'gopro_syn', 'train')
        common = {'type': 'VideoDeblurDataset', 'phase': 'train', 'num_frame': 8, 'gt_size': 256,
                  'use_hflip': True, 'use_rot': True, 'blur_dir': 'blur_gamma'}
        backends = {
            'folder (PNG)': {'dataroot': split, 'layout': 'gopro'},
            'BasicSR LMDB (PNG)': {'dataroot': osp.join(tmp, 'lmdb'), 'layout': 'lmdb'},
            'ESTRNN LMDB (raw)': {'dataroot': osp.join(tmp, 'estrnn'), 'layout': 'estrnn_lmdb',
                                  'lmdb_name': 'gopro_syn', 'split': 'train'},
        }
        datasets = {name: build_dataset({**common, **opt, 'name': name}) for name, opt in backends.items()}
        seconds = dict.fromkeys(datasets, 0.0)
        for _ in range(args.rounds):
            for name, dataset in datasets.items():
                start = time.perf_counter()
                for i in range(args.clips):
                    dataset[i % len(dataset)]
                seconds[name] += time.perf_counter() - start
    clips = args.clips * args.rounds
    print(f'\n8-frame clips, 256x256 crops from {args.height}x{args.width} frames, {clips} clips per backend\n')
    print('| backend | clips/s | relative to folder |')
    print('|---|---|---|')
    folder_rate = clips / seconds['folder (PNG)']
    for name, secs in seconds.items():
        print(f'| {name} | {clips / secs:.1f} | {clips / secs / folder_rate:.2f}x |')


if __name__ == '__main__':
    main()
