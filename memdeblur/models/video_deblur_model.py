"""VideoDeblurModel: training of video deblurring networks in BasicSR, and the hooks its test and validation run.

Extends BasicSR's ``VideoRecurrentModel`` and overrides only what differs for deblurring:

* checkpoints of either format load through ``memdeblur.networks.checkpoint`` (the authors'
  original files too), checked key by key; checkpoints and training states (``memdeblur.models.training_state``) are
  written atomically and checked before they are resumed;
* training: the step of ``memdeblur.models.training_step`` (one loss over the network's output(s),
  gradient-norm clipping, EMA, ``train.precision``/``channels_last``/``compile``), under BasicSR's
  ``VideoRecurrentModel.optimize_parameters`` (``train.fix_flow``);
* the network's needs come from its traits (``memdeblur.networks.traits``): frame margins (ESTRNN) filled by
  reflection, frame sizes padded (EDVR, BasicVSR++);
* validation and testing: the model restores a window (``restore_window``), ``memdeblur.evaluation.evaluator``
  scores it, and the model logs the scores and, when testing, writes the report (``memdeblur.evaluation.run_report``);
* CPU and multi-process CPU runs (``memdeblur.basicsr_compat``'s DDP and validation gaps);
* no silently wrong result: misspelt or mistyped options are refused (``model_options``), a
  non-finite loss stops training, non-finite inputs or outputs stop evaluation, naming the frames.
"""
import contextlib
import os
import os.path as osp

import torch
from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info, master_only
from basicsr.utils.registry import MODEL_REGISTRY

from memdeblur.basicsr_compat import wrapped_for_processes
from memdeblur.evaluation.evaluator import Evaluator
from memdeblur.evaluation.results_table import results_message, summarize
from memdeblur.evaluation.run_report import border_convention, measure_facts, write_run_report
from memdeblur.models import training_state
from memdeblur.models.model_options import check_model_options
from memdeblur.models.training_step import TrainingStep, prepare_for_training
from memdeblur.networks.checkpoint import param_key_origin
from memdeblur.networks.fast_runner import autocast_context, inference_runner
from memdeblur.networks.traits import network_traits
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.atomic_save import atomic_torch_save
from memdeblur.utils.naming import listed, non_finite_entries
from memdeblur.utils.padding import reflect_indices
from memdeblur.utils.threads import cpu_step
from memdeblur.utils.timing import timed


@MODEL_REGISTRY.register()
class VideoDeblurModel(VideoRecurrentModel, TrainingStep):
    """Video deblurring model: (B, T, 3, H, W) blurry in, the same size restored out."""

    def __init__(self, opt):
        check_model_options(opt)
        super().__init__(opt)
        self.traits = network_traits(self.net_g)
        self.spatial_padding = self.traits.padding()
        val = opt.get('val') or {}
        self.border_frames, self.precision_name = val.get('border_frames', 'reflect'), val.get('precision', 'float32')
        self._evaluator = self._fast_net = None  # made at the first validation

    def model_to_device(self, net):
        """On the device, prepared for training (``training_step.prepare_for_training``) when training, wrapped
        for several processes or GPUs without assuming CUDA (``basicsr_compat.wrapped_for_processes``)."""
        net = net.to(self.device)
        if self.is_train:
            net = prepare_for_training(net, self.opt.get('train') or {}, self.device)
        return wrapped_for_processes(net, self.opt, self.device)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """Load BasicSR or original-format weights after checking they fit the network (``load_weights``)."""
        get_root_logger().info(f'Loading {type(self.get_bare_model(net)).__name__} from {load_path} [{param_key}].')
        training_state.load_weights(self.get_bare_model(net), load_path, param_key, strict,
                                    param_key_origin(self.opt['path'], param_key),
                                    self.opt['path'].get('resume_state') if self.is_train else None,
                                    self.opt['path'].get('models'))

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's network checkpoint (``{param_key: state_dict}``), written atomically by the first process."""
        nets, keys = (x if isinstance(x, list) else [x] for x in (net, param_key))
        checkpoint = {key: {k: v.cpu().contiguous() for k, v in self.get_bare_model(n).state_dict().items()}
                      for n, key in zip(nets, keys)}
        label = 'latest' if current_iter == -1 else current_iter
        atomic_torch_save(checkpoint, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        """BasicSR's resumable training state as plain data (``training_state``), written atomically."""
        if current_iter != -1:
            state = training_state.training_state(epoch, current_iter, self.optimizers, self.schedulers,
                                                  self.precision.state_dict())
            atomic_torch_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        """BasicSR's ``resume_training`` of a state checked against this run, with the settings it keeps logged,
        schedulers' ``Counter``s kept and the loss scaler's state restored (``memdeblur.models.training_state``)."""
        source = self.opt['path'].get('resume_state') or 'the training state'
        training_state.check_resumable(resume_state, self.optimizers, self.schedulers,
                                       self.get_bare_model(self.net_g), source)
        training_state.log_kept_settings(resume_state, self.optimizers, source)
        counters = training_state.counter_names(self.schedulers)
        super().resume_training(resume_state)
        training_state.restore_counters(self.schedulers, counters)
        self.precision.load_state_dict(resume_state.get('grad_scaler'))

    def training_outputs(self):  # what the loss compares with ``training_target``; subclasses give several scales
        return self.spatial_padding.run(self.net_g, self.lq)

    def training_target(self):  # the ground truth of the frames ``training_outputs`` restores
        first, last = self.traits.frame_margins
        return self.gt[:, first:self.gt.shape[1] - last]

    def restore(self, net, lqs):  # (1, T, 3, H, W) -> an output per frame the network can restore
        return self.spatial_padding.run(net, lqs)

    def feed_data(self, data):
        """Move a batch to the device; a batch with NaN/Inf frames is refused, naming its clips."""
        for side in (side for side in ('lq', 'gt') if side in data):
            bad = non_finite_entries(data[side], data.get('key') or [f'#{i}' for i in range(len(data[side]))])
            if bad:
                raise ValueError(f'Non-finite (NaN or Inf) values in the {side} frames of training clips '
                                 f'{listed(bad)}.')
        super().feed_data(data)

    def test(self):
        """Restore ``self.lq``, timed, into ``self.output`` covering ``self.output_range`` of its frames: all, the clip
        extended by reflection for a network with frame margins (``val.border_frames: reflect``), or the inner ones
        (``inner``, as ESTRNN's authors evaluate). Never through DDP: processes test different sequences."""
        net, (first, last), num_frames = self.inference_network(), self.traits.frame_margins, self.lq.shape[1]
        reflect = self.border_frames == 'reflect' and (first or last)
        lqs = self.lq[:, reflect_indices(num_frames, first, last)] if reflect else self.lq
        self.output_range = (0, num_frames) if reflect else (first, num_frames - last)
        with timed(self.device) as clock, torch.no_grad(), autocast_context(self.device, self.precision_name):
            self.output = self.restore(net, lqs).float()
        self.forward_seconds = clock.seconds
        if self.is_train:
            self.net_g.train()

    def restore_window(self, lq):
        """The evaluator's restore function: (T, 3, H, W) -> (restored frames, index of the first, seconds)."""
        self.feed_data({'lq': lq.unsqueeze(0)})
        with contextlib.nullcontext() if self.is_train else cpu_step(self.device, lq.shape[0]):
            self.test()
        outputs, first = self.output[0], self.output_range[0]
        del self.lq, self.output
        return outputs, first, self.forward_seconds

    def bare_network(self):  # the network tested: the EMA one when there is one
        return self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)

    def inference_network(self):
        """``bare_network`` in eval mode; with ``val.fast`` (testing) its fast copy (``inference_runner``, weights in
        ``val.precision``; on a CPU the process then keeps freed memory for reuse), made once."""
        net = self.bare_network()
        if not (self.opt.get('val') or {}).get('fast') or self.is_train:
            return net.eval()
        if self._fast_net is None:
            self._fast_net, _ = inference_runner(net, self.device, self.precision_name)
            if self.device.type == 'cpu':
                retain_freed_memory()
        return self._fast_net

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """BasicSR's loop ends past ``total_iter``: the final validation, of the weights of iteration
        ``total_iter``, is labelled so (log, best-metric record, image folder)."""
        if self.is_train:
            current_iter = min(current_iter, self.opt['train']['total_iter'])
        super().validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self.dist_validation(dataloader, current_iter, tb_logger, save_img)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Evaluate the dataset across processes (``Evaluator``); the first logs the scores and writes the report."""
        name, metrics = dataloader.dataset.opt['name'], self.opt['val'].get('metrics') or {}
        self._evaluator = self._evaluator or Evaluator(metrics)
        image_dir = osp.join(self.opt['path']['visualization'], name, *([str(current_iter)] if self.is_train else []))
        result = self._evaluator.evaluate(dataloader.dataset, self.restore_window, image_dir, save_img, f'Test {name}')
        if get_dist_info()[0] != 0 or not (metrics and result.records):
            return
        rows = summarize(result.records, list(metrics))
        self._initialize_best_metric_results(name)
        for metric in metrics:
            self._update_best_metric_result(name, metric, rows[-1][metric], current_iter)
            if tb_logger:
                tb_logger.add_scalar(f'metrics/{name}/{metric}', rows[-1][metric], current_iter)
        get_root_logger().info(results_message(name, rows, list(metrics), self.best_metric_results[name]))
        if not self.is_train:
            self.write_report(name, rows, result.seconds_per_frame)

    def write_report(self, dataset_name, rows, seconds_per_frame):
        """The test run's report (Markdown, CSV, JSON) in the results folder, with model size, cost and speed."""
        facts = measure_facts(self.bare_network(), self.spatial_padding, self.device,
                              self.opt['val'].get('complexity', {}),
                              seconds_per_frame, self.opt['path'].get('pretrain_network_g'),
                              border_convention(self.traits.frame_margins, self.border_frames))
        written = write_run_report(osp.join(self.opt['path']['results_root'], dataset_name), self.opt['name'],
                                   dataset_name, rows, list(self.opt['val']['metrics']), facts)
        get_root_logger().info(f'Results: {", ".join(written)}; frames and comparisons under '
                               f'{osp.join(self.opt["path"]["visualization"], dataset_name)}')
