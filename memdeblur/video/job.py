"""The video job: deblur a video file, a folder of frames or a folder of sequence folders into outputs on disk, with
every file planned and checked first, ``resume``, and the work shared under ``torchrun``; what
``tools/deblur_video.py`` runs, usable from Python:

    from memdeblur.video.job import VideoJob, run_video_job
    run_video_job(VideoJob('clips/', 'out/', opt='options/test_memdeblur_synthetic_pretrained.yml'))

A ``VideoJob`` holds what the tool's flags say, under the same names (``side_by_side`` is ``--side-by-side``).
``run_video_job`` checks it, reads the model's file once (an export's metadata, or the options file), resolves the
windows and tiles (``memdeblur.runtime.settings``), plans every output (``memdeblur.video.run_plan``), opens the model
(``memdeblur.runtime.backends.open_model``) and deblurs each sequence (``VideoDeblurrer``). Messages name a setting
as ``name`` spells it: as here by default, as a flag from the tool.
"""
import json
import math
import os
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Optional, Union

import torch

from memdeblur.evaluation.no_reference import NIQE_MIN_SIDE
from memdeblur.media.inputs import find_inputs
from memdeblur.media.video_encoding import DEFAULT_CRF
from memdeblur.networks.checkpoint import network_from_options, weights_source
from memdeblur.networks.fast_runner import check_precision
from memdeblur.run_options import read_options
from memdeblur.runtime.backends import EXPORTS, NETWORKS, backends_for, default_backend, is_export_path, open_model
from memdeblur.runtime.backends.export_file import load_export
from memdeblur.runtime.restorer import Restorer
from memdeblur.runtime.settings import DEFAULT_TILE_OVERLAP, DEFAULT_WINDOW, RestoreSettings
from memdeblur.utils.devices import resolve_device
from memdeblur.utils.digests import file_digest
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import write_json_atomic
from memdeblur.utils.threads import process_governor
from memdeblur.video.deblurrer import VideoDeblurrer
from memdeblur.video.process_share import ProcessShare
from memdeblur.video.run_plan import check_planned, plan_run, resume_mismatch, run_record

# the settings that change what a run writes, recorded (as flags, the record's keys since its first version) with
# each output for ``resume``; besides these, the model's record and the window, overlap, backend and fps in effect
RESULT_SETTINGS = ('format', 'side_by_side', 'tile', 'tile_overlap', 'precision', 'plain', 'codec', 'pix_fmt',
                   'crf', 'exact', 'report')


@dataclass
class VideoJob:
    """What to deblur, with which model, how, and where to (the tool's flags; ``--help`` says each)."""

    input: str
    output: str
    opt: Optional[str] = None
    ckpt: Optional[str] = None
    backend: Optional[str] = None
    format: str = 'auto'
    side_by_side: bool = False
    window: Optional[int] = None
    overlap: Optional[int] = None
    tile: Union[int, str] = 'auto'
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    device: str = 'auto'
    precision: str = 'float32'
    threads: Optional[int] = None
    plain: bool = False
    compile: bool = False
    fps: Optional[Fraction] = None
    codec: Optional[str] = None
    pix_fmt: Optional[str] = None
    crf: int = DEFAULT_CRF
    exact: bool = False
    scratch: Optional[str] = None
    report: bool = False
    summary: Optional[str] = None
    resume: bool = False
    force: bool = False

    @classmethod
    def from_namespace(cls, args):
        """The job of a parsed command line (an ``argparse.Namespace`` with at least these names)."""
        return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})


def run_video_job(job, name=str, say=print):
    """Run ``job`` in this process, or in this process's share of a ``torchrun`` run; return 0.

    Args:
        job (VideoJob): The job.
        name (callable): How messages spell a setting (the tool: ``side_by_side`` -> ``--side-by-side``).
        say (callable): Receives the lines a user reads (process 0's): threads, resume, each sequence's summary.
    """
    if job.resume and job.force:
        raise OptionError(f'{name("resume")} keeps the outputs that exist, {name("force")} replaces them: give one of '
                          'the two.')
    share = ProcessShare(use_gpus=job.device in ('auto', 'cuda') and torch.cuda.is_available())
    try:
        run_share(job, share, name, say if share.rank == 0 else (lambda line: None))
    except BaseException as err:
        share.close(err)  # the others stop too; a process other than 0 leaves the error to process 0
        raise
    share.close()
    return 0


def run_share(job, share, name, say):
    """Deblur every input sequence this process's ``share`` holds (all of them without torchrun)."""
    device = resolve_device(job.device, share.local_rank, name('device'))
    if device.type == 'cpu':
        say(f'threads: {process_governor(job.threads).describe()}')
    exported = check_job(job, device, name)
    export = load_export(job.ckpt) if exported else None  # read and checked once: settings, record, model
    opt = None if exported else read_options(job.opt)
    settings = RestoreSettings.resolve(job.window, job.overlap, job.tile, job.tile_overlap, job.exact, job.scratch,
                                       export.info['output_frames'] if exported else None, job.ckpt, name)
    inputs = find_inputs(job.input, job.fps)
    plans = plan_run(inputs, job.output, job.format, job.report, job.summary, name)
    read_paths = [job.input, *(seq.path for seq in inputs)]  # no output may be, hold or lie in one of these
    record = output_record(job, settings, export.info if exported else None, opt)
    if job.resume:
        plans = resumable(plans, record, name, say)
    check_planned(plans, job.summary, read_paths, job.force)
    share.barrier()  # every process has checked the outputs before any writes one
    model = open_model(export if exported else network_from_options(opt, job.opt, job.ckpt), job.backend, device,
                       job.precision, fast=not job.plain, compile_net=job.compile)
    restorer = Restorer(model, window=settings.window, overlap=settings.overlap, tile=settings.tile,
                        tile_overlap=settings.tile_overlap, exact=settings.exact, scratch=settings.scratch)
    deblurrer = VideoDeblurrer(restorer, side_by_side=job.side_by_side, codec=job.codec, crf=job.crf,
                               pix_fmt=job.pix_fmt, report=job.report)

    def deblur(plan, shared):
        result = deblurrer.deblur(plan.seq, plan.output, read_paths, job.force, share=share if shared else None,
                                  record=run_record(plan.seq, record))
        if result is not None:
            say(summary_lines(result))
        return result

    if len(plans) >= share.world_size:  # each process its own sequences
        summaries = [deblur(plan, shared=False) for plan in share.mine(plans)]
    else:  # fewer sequences than processes: all restore each sequence together, its windows shared
        summaries = [result for result in (deblur(plan, shared=True) for plan in plans) if result is not None]
    summaries = share.finish(summaries)
    if job.summary and share.rank == 0:
        write_json_atomic(job.summary, {'sequences': summaries})


def check_job(job, device, name):
    """Refuse what the job would only fail on later, before anything is loaded; whether ``ckpt`` is an export."""
    exported = is_export_path(job.ckpt)
    if not 0 <= job.crf <= 63:
        raise OptionError(f'{name("crf")} {job.crf}: need a value from 0 (lossless) to 51 (H.264) or 63 (VP9).')
    check_precision(job.precision, device, name('precision'))
    if exported and job.opt:
        raise OptionError(f'{name("ckpt")} {job.ckpt} is an exported model (it holds its network): drop '
                          f'{name("opt")}.')
    if not exported and not job.opt:
        raise OptionError(f'{name("opt")}: give the test options file of the network (or {name("ckpt")} an exported '
                          '.onnx model).')
    if not exported and job.backend in backends_for(EXPORTS):
        raise OptionError(f'{name("backend")} {job.backend} runs exported models: export the network first, e.g. '
                          f'python tools/export_onnx.py CHECKPOINT --opt {job.opt} -o model.onnx --frames '
                          f'{job.window or DEFAULT_WINDOW}, then give {name("ckpt")} model.onnx.')
    return exported


def output_record(job, settings, export_info, opt):
    """What determines the job's outputs, as plain values, kept with each output: ``resume`` keeps only outputs made
    with the same. An exported model's weights are its checked digest (graph and weights, not its metadata)."""
    if export_info is not None:
        model = {'network': {'type': export_info['network'], **(export_info['network_options'] or {})},
                 'weights': export_info['model_sha256'], 'exported_frames': export_info['frames']}
        backend = job.backend or default_backend(EXPORTS)
    else:
        weights = weights_source(opt, job.ckpt)
        model = {'network': json.loads(json.dumps(opt['network_g'], sort_keys=True, default=str)),
                 'weights': file_digest(weights.file) if weights.file and os.path.isfile(weights.file) else None,
                 'param_key_g': weights.param_key, 'strict_load_g': weights.strict}
        backend = default_backend(NETWORKS)
    flags = {f'--{setting.replace("_", "-")}': getattr(job, setting) for setting in RESULT_SETTINGS}
    return {**model, **flags, '--window': settings.window, '--overlap': settings.overlap, '--backend': backend,
            '--fps': None if job.fps is None else str(job.fps)}


def resumable(plans, record, name, say):
    """The plans ``resume`` must still do; outputs made with other settings are refused, named with what differs."""
    done = [plan for plan in plans if os.path.lexists(plan.output)]
    mismatches = [(plan.output, resume_mismatch(plan.output, plan.seq, record)) for plan in done]
    mismatches = [(output, why) for output, why in mismatches if why]
    if mismatches:
        shown = '; '.join(f'{output} ({why})' for output, why in mismatches[:3])
        more = f' and {len(mismatches) - 3} more' if len(mismatches) > 3 else ''
        raise OptionError(f'{name("resume")}: {len(mismatches)} existing output(s) were made otherwise than this run '
                          f'would make them: {shown}{more}. Remove them, or rerun everything with {name("force")} '
                          f'instead of {name("resume")}.')
    say(f'{name("resume")}: {len(done)} of {len(plans)} outputs exist and are kept')
    return [plan for plan in plans if not os.path.lexists(plan.output)]


def summary_lines(result):
    """The lines a user reads after each sequence (``VideoDeblurrer.deblur``'s summary), as one text."""
    name = result['sequence']
    lines = [f'{name}: {result["frames"]} frames -> {result["output"]} ({result["seconds"]:.1f} s, '
             f'{result["frames_per_second"]:.2f} frames/s; peak memory so far {result["peak_memory_mib"]:.0f} MiB '
             f'({result["peak_memory_kind"]}))']
    lines += [f'  {name}: {note}' for note in result['notes']]
    if 'report' in result:
        means = result['report']['means']
        if math.isnan(means['niqe_input']):
            niqe = f'NIQE not computed (frames under {NIQE_MIN_SIDE} pixels a side)'
        else:
            niqe = f'NIQE {means["niqe_input"]:.2f} -> {means["niqe_output"]:.2f}'
        lines.append(f'  {name}: edge sharpness {means["sharpness_input"]:.1f} -> {means["sharpness_output"]:.1f}, '
                     f'{niqe} (means over the frames; {result["report"]["csv"]}, {result["report"]["plot"]})')
    return '\n'.join(lines)
