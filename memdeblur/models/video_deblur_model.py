"""VideoDeblurModel: training and evaluation of video deblurring networks in BasicSR.

Extends BasicSR's ``VideoRecurrentModel`` and overrides only what differs for deblurring:

* checkpoints of either format load through ``memdeblur.utils.checkpoint`` (the authors'
  original files too), checked key by key; checkpoints and training states are written atomically;
* training: the step of ``memdeblur.models.training_step`` (one loss over the network's output(s),
  gradient-norm clipping, EMA, ``train.precision``/``channels_last``/``compile``), under BasicSR's
  ``VideoRecurrentModel.optimize_parameters`` (``train.fix_flow``);
* the network's needs come from its ``network_traits``: frame margins (ESTRNN) filled by reflection, frame
  sizes padded (EDVR, BasicVSR++);
* evaluation over ``VideoDeblurTestDataset`` (whole sequences or windows): the model restores, the
  ``memdeblur.evaluation`` package scores (both PSNR/SSIM conventions, output and blurry input), draws the
  comparison pictures and writes the reports (Markdown, CSV, JSON) with complexity and runtime;
* CPU and multi-process CPU runs (gaps 4 and 5 of ``memdeblur.basicsr_compat``);
* no silently wrong result: misspelt or mistyped options are refused (``model_options``), a
  non-finite loss stops training, non-finite inputs or outputs stop evaluation, naming the frames.
"""
import collections
import os
import os.path as osp
import time

import torch
from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger, imwrite
from basicsr.utils.dist_util import get_dist_info, master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch import distributed as dist
from torch.nn.parallel import DataParallel, DistributedDataParallel
from tqdm import tqdm

from memdeblur.evaluation.comparison_image import comparison_image
from memdeblur.evaluation.complexity import network_complexity
from memdeblur.evaluation.results_table import summarize
from memdeblur.evaluation.scoring import FrameScorer, check_finite_frames
from memdeblur.evaluation.test_report import RunFacts, write_test_report
from memdeblur.inference.restorer import Restorer
from memdeblur.models.model_options import check_model_options
from memdeblur.models.training_step import TrainingStep
from memdeblur.utils.atomic_save import atomic_torch_save
from memdeblur.utils.checkpoint import CheckpointError, load_pretrained
from memdeblur.utils.memory import peak_memory_mib
from memdeblur.utils.naming import listed, non_finite_entries
from memdeblur.utils.network_traits import network_traits
from memdeblur.utils.padding import SpatialPadding, reflect_indices
from memdeblur.utils.precision import PRECISIONS


@MODEL_REGISTRY.register()
class VideoDeblurModel(VideoRecurrentModel, TrainingStep):
    """Video deblurring model: (B, T, 3, H, W) blurry in, the same size restored out."""

    def __init__(self, opt):
        check_model_options(opt)
        super().__init__(opt)
        self._scorer = None  # FrameScorer of val.metrics, made at the first validation
        self.traits = network_traits(self.net_g)
        if 'size_multiple' in opt or 'min_size' in opt:
            get_root_logger().warning('Options size_multiple / min_size are deprecated: networks declare the frame '
                                      'sizes they take (network_traits); the values given apply on top.')
        self.spatial_padding = SpatialPadding.for_network(self.net_g, opt.get('size_multiple', 1),
                                                          opt.get('min_size', 0))
        self.border_frames = (opt.get('val') or {}).get('border_frames', 'reflect')

    def frame_margins(self):
        """(first, last): how many frames at the start and the end of a clip the network gives no
        output for (``network_traits``: ESTRNN's past and future frames); none for most networks."""
        return self.traits.frame_margins

    def model_to_device(self, net):
        """Gap 4: DistributedDataParallel with CUDA ``device_ids`` only when the model is on a GPU. For training,
        ``train.channels_last`` and ``train.compile`` are applied first (``TrainingStep.prepare_for_training``)."""
        net = net.to(self.device)
        if self.is_train:
            net = self.prepare_for_training(net)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """Load BasicSR or original-format weights after checking they fit the network.

        When resuming, BasicSR loads the network saved with the training state (``models/net_g_<iter>.pth`` of this
        experiment, a file the user never named): an error then names the state it came from."""
        get_root_logger().info(f'Loading {type(self.get_bare_model(net)).__name__} from {load_path} [{param_key}].')
        state = self.opt['path'].get('resume_state') if self.is_train else None
        try:
            load_pretrained(self.get_bare_model(net), load_path, param_key, strict)
        except CheckpointError as err:
            if not state or osp.dirname(osp.abspath(load_path)) != osp.abspath(self.opt['path']['models']):
                raise
            raise CheckpointError(f'Cannot resume from training state {state!r}: the network saved with it, '
                                  f'{load_path}, is unusable for this run (a state of another experiment, network or '
                                  f'configuration?): {err}') from err

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's network checkpoint (``{param_key: state_dict}``), written atomically; errors propagate.

        Written by the first process only, as BasicSR's: under torchrun the others hold the same weights."""
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        checkpoint = {key: {k: v.cpu().contiguous() for k, v in self.get_bare_model(n).state_dict().items()}
                      for n, key in zip(nets, keys)}
        label = 'latest' if current_iter == -1 else current_iter
        atomic_torch_save(checkpoint, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        """BasicSR's resumable training state, written atomically by the first process only; errors propagate.

        The state holds tensors, numbers and plain containers only, so that it loads with
        ``weights_only=True``: a scheduler's ``Counter`` (``MultiStepRestartLR``'s milestones) is saved as
        a dict and made a ``Counter`` again by ``resume_training``. Under ``train.precision: float16`` the loss
        scaler's state is kept too (``grad_scaler``).
        """
        if current_iter == -1:
            return
        schedulers = [{k: dict(v) if isinstance(v, collections.Counter) else v for k, v in s.state_dict().items()}
                      for s in self.schedulers]
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': schedulers}
        if self.precision.state_dict() is not None:
            state['grad_scaler'] = self.precision.state_dict()
        atomic_torch_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        """BasicSR's ``resume_training``, after checking that the state was saved by a run of this network and
        configuration (``check_resumable``) and logging the optimizer settings the state keeps over the options
        (``log_kept_settings``); scheduler attributes that are ``Counter``s stay ``Counter``s; the loss scaler's
        state is restored when the run and the state both use one."""
        source = self.opt['path'].get('resume_state') or 'the training state'
        self.check_resumable(resume_state, source)
        self.log_kept_settings(resume_state, source)
        counters = [[k for k, v in vars(s).items() if isinstance(v, collections.Counter)] for s in self.schedulers]
        super().resume_training(resume_state)
        for scheduler, keys in zip(self.schedulers, counters):
            for key in keys:
                setattr(scheduler, key, collections.Counter(getattr(scheduler, key)))
        self.precision.load_state_dict(resume_state.get('grad_scaler'))

    def check_resumable(self, resume_state, source, max_listed=4):
        """Raise ``CheckpointError`` naming ``source`` when the state's optimizers do not fit this run's: another
        number of optimizers, schedulers, parameter groups or parameters, or state tensors (Adam's moments) of other
        shapes than the parameters. torch would load a state of the same parameter count silently and fail at the
        first step, or fail with an error about sizes that names nothing."""
        names = {id(p): n for n, p in self.get_bare_model(self.net_g).named_parameters()}
        problems = []
        for kind, saved, own in (('optimizers', resume_state.get('optimizers'), self.optimizers),
                                 ('schedulers', resume_state.get('schedulers'), self.schedulers)):
            if not isinstance(saved, list) or len(saved) != len(own):
                problems.append(f'{len(saved) if isinstance(saved, list) else "no"} {kind} in the state, '
                                f'{len(own)} in this run')
        for saved, optimizer in zip(resume_state.get('optimizers') or [], self.optimizers):
            groups = [len(g['params']) for g in optimizer.param_groups]
            saved_groups = [len(g.get('params', ())) for g in saved.get('param_groups', ())]
            if saved_groups != groups:
                problems.append(f'parameters per optimizer group: {saved_groups} in the state, {groups} in this run')
                continue
            params = [p for g in optimizer.param_groups for p in g['params']]
            ids = [i for g in saved['param_groups'] for i in g['params']]
            shapes = []
            for i, param in zip(ids, params):
                moments = [v for v in (saved.get('state') or {}).get(i, {}).values() if torch.is_tensor(v) and v.dim()]
                if moments and moments[0].shape != param.shape:
                    shapes.append(f'{names.get(id(param), "?")}: {tuple(moments[0].shape)} vs {tuple(param.shape)}')
            if shapes:
                problems.append(f'{len(shapes)} parameter(s) of another shape (state vs this run): '
                                f'{listed(shapes, max_listed)}')
        if problems:
            raise CheckpointError(f'Training state {source!r} was saved by a run of another network or configuration '
                                  f'than {type(self.get_bare_model(self.net_g)).__name__} of these options: '
                                  + '; '.join(problems) + '.')

    def log_kept_settings(self, resume_state, source):
        """Warn when the options set an optimizer differently from the state (``train:optim_g:lr`` changed before
        ``--auto_resume``, ...): resuming keeps the state's settings and learning-rate schedule, as BasicSR does."""
        for saved, optimizer in zip(resume_state['optimizers'], self.optimizers):
            for index, (then, now) in enumerate(zip(saved['param_groups'], optimizer.param_groups)):
                changed = [key for key in now if key not in ('params', 'lr') and key in then and now[key] != then[key]]
                if changed:
                    get_root_logger().warning(
                        f'Resuming from {source}: the options set {", ".join(f"{k} {now[k]}" for k in changed)} for '
                        f'parameter group {index}, the state {", ".join(f"{k} {then[k]}" for k in changed)}; the '
                        'state\'s values and learning-rate schedule are used. To train with the new ones, start a new '
                        'run from the saved weights (path:pretrain_network_g) instead of resuming.')

    def training_outputs(self):
        """What the loss compares with ``training_target``; subclasses return several scales."""
        return self.spatial_padding.run(self.net_g, self.lq)

    def training_target(self):
        """The ground truth of the frames ``training_outputs`` restores."""
        first, last = self.frame_margins()
        return self.gt[:, first:self.gt.shape[1] - last]

    def restore(self, net, lqs):
        """Restore (1, T, 3, H, W) frames with ``net``; one output per frame the network can restore."""
        return self.spatial_padding.run(net, lqs)

    def feed_data(self, data):
        """Move a batch to the device; a training batch with NaN/Inf frames is refused, naming its clips."""
        for side in ('lq', 'gt'):
            if side in data:
                keys = data.get('key') or [f'#{i}' for i in range(len(data[side]))]
                bad = non_finite_entries(data[side], keys)
                if bad:
                    raise ValueError(f'Non-finite (NaN or Inf) values in the {side} frames of training clips '
                                     f'{listed(bad)}.')
        super().feed_data(data)

    def test(self):
        """Restore ``self.lq`` with the EMA network when there is one; time the forward pass.

        Sets ``self.output`` and ``self.output_range``, the frames of ``self.lq`` it covers. A
        network with frame margins (``frame_margins``) gets the window extended by reflection so
        that every frame is restored (``val.border_frames: reflect``, the default), or restores
        only the frames it can (``inner``, as ESTRNN's authors evaluate).

        The bare network runs, never its DDP wrapper: processes test different sequences, and a
        DDP forward on one process alone would wait forever for the others' collectives.
        """
        net = self.inference_network()
        num_frames = self.lq.shape[1]
        first, last = self.frame_margins()
        lqs = self.lq
        if self.border_frames == 'reflect' and (first or last):
            lqs = lqs[:, reflect_indices(num_frames, first, last)]
            self.output_range = (0, num_frames)
        else:
            self.output_range = (first, num_frames - last)
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        dtype = self.inference_dtype()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=dtype or torch.float32,
                                             enabled=dtype is not None):
            self.output = self.restore(net, lqs).float()
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
        self.forward_seconds = time.perf_counter() - start
        if self.is_train:
            self.net_g.train()

    def inference_network(self):
        """The network ``test`` runs: the EMA one when there is one, in eval mode; with ``val.fast``
        (testing only) a prepared copy: BatchNorm folded, in-place residuals, channels-last, sparse read-outs,
        weights in ``val.precision``: the network of a ``Restorer`` (``memdeblur.inference.restorer``, which checks the
        precision and, on a CPU, makes the process keep freed memory for reuse), made once."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        if not (self.opt.get('val') or {}).get('fast') or self.is_train:
            return net.eval()
        if getattr(self, '_fast_net', None) is None:
            self._fast_net = Restorer(net, self.device, self.inference_precision()).network
        return self._fast_net

    def inference_precision(self):
        """``val.precision``'s name (float32 when not set)."""
        return (self.opt.get('val') or {}).get('precision', 'float32')

    def inference_dtype(self):
        """The autocast dtype of ``val.precision`` (None for float32)."""
        return PRECISIONS[self.inference_precision()]

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """Gap 9: BasicSR's loop ends past ``total_iter``; the final validation is of the weights of iteration
        ``total_iter`` and is labelled so (log, best-metric record, image folder)."""
        if self.is_train:
            current_iter = min(current_iter, self.opt['train']['total_iter'])
        super().validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self.dist_validation(dataloader, current_iter, tb_logger, save_img)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Gap 5: evaluate every window of the dataset, split across processes, without CUDA assumptions."""
        dataset = dataloader.dataset
        dataset_name = dataset.opt['name']
        metrics_opt = self.opt['val'].get('metrics') or {}
        rank, world_size = get_dist_info()
        records, seconds, frames = [], 0.0, 0
        indices = range(rank, len(dataset), world_size)
        for idx in tqdm(indices, desc=f'Test {dataset_name}', unit='window', disable=rank != 0):
            item = dataset[idx]
            records += self.evaluate_window(item, metrics_opt, dataset_name, current_iter, save_img)
            seconds += self.forward_seconds
            frames += item['lq'].shape[0]
        if world_size > 1:
            gathered = [None] * world_size
            dist.all_gather_object(gathered, (records, seconds, frames))
            records = [r for part in gathered for r in part[0]]
            seconds, frames = sum(p[1] for p in gathered), sum(p[2] for p in gathered)
        if rank == 0 and metrics_opt and records:
            rows = summarize(records, list(metrics_opt))
            self._log_results(dataset_name, rows, current_iter, tb_logger)
            if not self.is_train:
                self._write_tables(dataset_name, rows, seconds / max(frames, 1))

    def evaluate_window(self, item, metrics_opt, dataset_name, current_iter, save_img):
        """Restore one window (an item of ``VideoDeblurTestDataset``) and score its kept frames with ``metrics_opt``;
        saves the restored frames (``save_img``) and the sequence's comparison picture under the visualization
        folder. Returns one score record per kept frame (``FrameScorer.score``)."""
        folder, names = item['folder'], item['frame_names']
        check_finite_frames(item['lq'], f'the blurry input of sequence {folder}', names)
        check_finite_frames(item['gt'], f'the sharp frames of sequence {folder}', names)
        self.feed_data({'lq': item['lq'].unsqueeze(0), 'gt': item['gt'].unsqueeze(0)})
        self.test()
        out_from, out_to = self.output_range
        keep_from, keep_to = max(item['keep'][0], out_from), min(item['keep'][1], out_to)
        outputs = self.output[0, keep_from - out_from:keep_to - out_from].detach().float().cpu()
        del self.lq, self.output, self.gt
        check_finite_frames(outputs, f'the network output for sequence {folder} (diverged weights?)',
                            names[keep_from:keep_to])
        outputs.clamp_(0, 1)
        if self._scorer is None:
            self._scorer = FrameScorer(metrics_opt)
        out_dir = osp.join(self.opt['path']['visualization'], dataset_name,
                           *([str(current_iter)] if self.is_train else []), folder)
        middle = item['sequence_length'] // 2
        records = []
        for offset, output in enumerate(outputs, start=keep_from):
            name = names[offset]
            record, restored, blurry, sharp = self._scorer.score(folder, name, output, item['lq'][offset],
                                                                 item['gt'][offset])
            records.append(record)
            if save_img:
                imwrite(restored['img'], osp.join(out_dir, f'{name}.png'))
            if item['frame_start'] + offset == middle:
                comparison = comparison_image(blurry['img'], [('restored', restored['img'])], sharp)
                imwrite(comparison, osp.join(osp.dirname(out_dir), f'{folder}_comparison_{name}.png'))
        return records

    def _log_results(self, dataset_name, rows, current_iter, tb_logger):
        average = rows[-1]
        metrics = list(self.opt['val']['metrics'])
        self._initialize_best_metric_results(dataset_name)
        message = f'Validation {dataset_name} ({average["frames"]} frames)\n'
        for metric in metrics:
            self._update_best_metric_result(dataset_name, metric, average[metric], current_iter)
            best = self.best_metric_results[dataset_name][metric]
            message += (f'\t # {metric}: {average[metric]:.4f} (blurry input {average[metric + " (blurry input)"]:.4f})'
                        f'\tBest: {best["val"]:.4f} @ {best["iter"]} iter\n')
            if tb_logger:
                tb_logger.add_scalar(f'metrics/{dataset_name}/{metric}', average[metric], current_iter)
        for row in rows[:-1]:
            message += f'\t   {row["sequence"]}: ' + ', '.join(f'{m} {row[m]:.4f}' for m in metrics) + '\n'
        get_root_logger().info(message)

    def border_convention(self):
        """How the first and last frames of each sequence are restored and scored, in words (results tables)."""
        first, last = self.frame_margins()
        if not (first or last):
            return 'every frame restored from the sequence itself'
        if self.border_frames == 'reflect':
            return (f'every frame scored; the first {first} and last {last} restored from the sequence extended by '
                    'reflection')
        return f'inner frames only: the first {first} and last {last} of each window not scored'

    def _write_tables(self, dataset_name, rows, seconds_per_frame):
        """The run's report (``memdeblur.evaluation.test_report``) in the results folder, with model size, cost and
        speed."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        complexity = self.opt['val'].get('complexity', {})
        height, width = complexity.get('height', 720), complexity.get('width', 1280)
        num_frames = complexity.get('num_frames', 100)
        cost = network_complexity(net, *self.spatial_padding.target(height, width), num_frames)
        memory, memory_kind = peak_memory_mib(self.device)
        facts = RunFacts(
            network=type(net).__name__, weights=self.opt['path'].get('pretrain_network_g'),
            parameters=cost.parameters, gmacs_authors=cost.thop_gmacs, gmacs_exact=cost.exact_gmacs,
            gmacs_attention=cost.attention_gmacs, complexity_size=[height, width, num_frames],
            seconds_per_frame=seconds_per_frame,
            device=(torch.cuda.get_device_name() if self.device.type == 'cuda'
                    else f'CPU, {torch.get_num_threads()} threads'),
            peak_memory_mib=memory, peak_memory_kind=memory_kind, border_frames=self.border_convention())
        base = osp.join(self.opt['path']['results_root'], dataset_name)
        written = write_test_report(base, self.opt['name'], dataset_name, rows, list(self.opt['val']['metrics']),
                                    facts)
        get_root_logger().info(f'Results: {", ".join(written)}; frames and comparisons under '
                               f'{osp.join(self.opt["path"]["visualization"], dataset_name)}')
