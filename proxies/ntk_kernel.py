"""The empirical Neural Tangent Kernel Θ = J Jᵀ of a network on a batch (docs/fast-ntk.md).

Row i of J is ∂(Σ_c f_c(x_i))/∂θ over every trainable parameter θ (TE-NAS, Chen et al., ICLR 2021;
TE-NAS's code keeps only tensors named "weight", here biases, norms, tokens and position tables
count too). Two constructions give the same N x N kernel:

- naive (TE-NAS): one batched forward, then one backward per sample, stacking the flattened
  gradients into the N x P Jacobian. The reference, and the only one valid when samples interact.
- fast (the per-sample-gradient construction of BackPACK and Opacus): one forward and one backward
  of Σ_i Σ_c f_c(x_i). Hooks see each layer's input A_i and output gradient G_i per sample and fold
  that layer's per-sample gradients into Θ on the spot, so memory stays per layer, never N x P.
  Linear and Conv2d (unfolded into patches): vec(G_iᵀA_i), or, when cheaper, the Gram identity
  ⟨G_iᵀA_i, G_jᵀA_j⟩ = Σ (A_iA_jᵀ) ⊙ (G_iG_jᵀ); LayerNorm and eval-mode BatchNorm: Σ_t G_i ⊙ x̂_i
  and Σ_t G_i. A parameter whose first dimension is 1 (class token, position embedding) is
  broadcast over the batch, so it is replaced by one copy per sample for the pass and autograd
  returns each sample's gradient. Any other parameter (AutoFormer's relative-position tables) is
  differentiated per sample by torch.func's vmap(grad) over the nearest enclosing module whose
  input carries the batch, with that module's output gradient from the same backward.

The fast construction needs samples that do not interact and modules called once per forward.
BatchNorm in train mode (batch statistics) breaks the first: `ntk_kernel` then takes the naive
construction and says so in the method it returns. A network it does not know can break them in
ways no rule sees (a Linear whose weight is also used through F.linear, a module that mixes the
samples, a (1, D) parameter indexed instead of broadcast), so every fast kernel checks itself
against two invariants, each parameter tensor apart:

- 1ᵀΘ_p1 = ‖∂(Σ_i Σ_c f_c(x_i))/∂p‖², the right side from the same backward: a parameter whose
  per-sample gradients are missed or incomplete fails it;
- vᵀΘ_pv = ‖∂(Σ_i v_i Σ_c f_c(x_i))/∂p‖² for fixed random sample weights v, the right side from a
  second backward on the same graph: per-sample gradients that sum right but belong to other
  samples fail it.

Either failing, or any exception inside the fast construction, sends `ntk_kernel` to the naive
construction with the reason. Precision is the caller's: the products run in the model's dtype
(the NTK proxies pass float64 models, see proxies/ntk.py) and Θ is summed in float64.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn.modules.batchnorm import _BatchNorm

from proxies.common import UndefinedScore, interacting_modules, samples_interact
from spaces.errors import BenchError, describe_error

METHODS = ("auto", "fast", "naive")

# Largest per-layer temporary of the fast construction, in elements (64 MiB in float32): per-sample
# weight gradients are formed a slice of output units at a time, pairwise token Grams a row block
# at a time.
CHUNK_ELEMENTS = 1 << 24


def check_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance of the invariant checks: 1e-8 in float64; in float32 round-off alone is
    ~1e-6 of the sums, so 1e4·ε (about 1e-3) there."""
    return max(1e-8, 1e4 * torch.finfo(dtype).eps)


@dataclass(frozen=True)
class EmpiricalNTK:
    """The kernel (N x N, float64), the construction that computed it ("fast" or "naive"), when
    `auto` fell back to the naive one, why, and into how many blocks of the batch it was cut after
    running out of memory (1: it was not)."""

    kernel: torch.Tensor
    method: str
    reason: str = ""
    blocks: int = 1


class FastNTKUnsupported(Exception):
    """The network breaks an assumption of the fast construction (interacting samples, a module
    called twice, a shared parameter, a parameter no module around it batches), or the kernel it
    built failed the invariant checks."""


def ntk_kernel(model: nn.Module, x: torch.Tensor, method: str = "auto") -> EmpiricalNTK:
    """Θ = J Jᵀ of `model` on images `x`; `auto` is fast unless the network does not allow it, the
    kernel fails its checks or the construction raises (out of memory excepted: that is no
    property of the network). Out of GPU memory, a network whose samples do not interact gets
    its kernel block by block (`blockwise_ntk`)."""
    if method not in METHODS:
        raise BenchError(f"unknown NTK method {method!r}; choose one of {', '.join(METHODS)}")
    with full_precision_matmul():
        try:
            return whole_ntk(model, x, method)
        except torch.OutOfMemoryError:
            if interacting_modules(model):
                raise  # the kernel of a sub-batch is another kernel
            return blockwise_ntk(model, x, method)


def blockwise_ntk(model: nn.Module, x: torch.Tensor, method: str) -> EmpiricalNTK:
    """Θ from the kernels of pairs of blocks of the batch, Θ[I ∪ J] for blocks I < J, with 2, 4,
    8, ... blocks until the pairs fit: exact when samples do not interact, since Θ_ij depends on
    samples i and j only."""
    parts = 2
    while True:
        release_cached_memory(x.device)
        try:
            return pairwise_blocks(model, x, method, parts)
        except torch.OutOfMemoryError:
            if 2 * parts > len(x):
                raise
            parts *= 2


def pairwise_blocks(model: nn.Module, x: torch.Tensor, method: str, parts: int) -> EmpiricalNTK:
    blocks = list(torch.arange(len(x), device=x.device).chunk(parts))
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
    reasons, methods = set(), set()
    for a in range(len(blocks)):
        for b in range(a + 1, len(blocks)):
            rows = torch.cat([blocks[a], blocks[b]])
            pair = whole_ntk(model, x[rows], method)
            kernel[rows[:, None], rows[None, :]] = pair.kernel
            reasons.add(pair.reason)
            methods.add(pair.method)
    return EmpiricalNTK(kernel, "naive" if "naive" in methods else "fast",
                        "; ".join(sorted(r for r in reasons if r)), len(blocks))


def release_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def whole_ntk(model: nn.Module, x: torch.Tensor, method: str) -> EmpiricalNTK:
    """Θ of the whole batch at once by `method` (see ntk_kernel)."""
    if method == "naive":
        return EmpiricalNTK(naive_ntk(model, x), "naive")
    try:
        # A fallback starts from the random state the fast attempt found (dropout masks).
        with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
            return EmpiricalNTK(fast_ntk(model, x), "fast")
    except torch.OutOfMemoryError:
        raise
    except Exception as err:
        if method == "fast":
            raise
        reason = str(err) if isinstance(err, FastNTKUnsupported) else (
            f"the fast construction raised {describe_error(err)}")
        return EmpiricalNTK(naive_ntk(model, x), "naive", reason)


@contextmanager
def full_precision_matmul() -> Iterator[None]:
    """TF32 off for CUDA matrix products and convolutions while a kernel is built: its 10-bit
    mantissa would put float32 kernels at 1e-3 relative error."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def condition_number(kernel: torch.Tensor) -> float:
    """λ_max / λ_min of a symmetric positive semi-definite kernel, eigenvalues in float64."""
    eigenvalues = torch.linalg.eigvalsh(kernel.detach().to(torch.float64))
    smallest, largest = eigenvalues[0].item(), eigenvalues[-1].item()
    if not smallest > 0:
        raise UndefinedScore(f"the NTK is singular (smallest eigenvalue {smallest:.3g} of largest "
                             f"{largest:.3g}), so its condition number is infinite")
    return largest / smallest


def trainable_parameters(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def naive_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """TE-NAS's construction: J (N x P) row by row, one backward of Σ_c f_c(x_i) per sample."""
    params = trainable_parameters(model)
    output = model(x)
    jacobian = output.new_empty(len(x), sum(p.numel() for p in params))
    for i in range(len(x)):
        grads = torch.autograd.grad(output[i].sum(), params, retain_graph=i + 1 < len(x),
                                    allow_unused=True, materialize_grads=True)
        torch.cat([g.reshape(-1) for g in grads], out=jacobian[i])
    return (jacobian @ jacobian.T).to(torch.float64)


def fast_ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The per-layer construction (module docstring); raises FastNTKUnsupported when it does not
    apply to `model` or its kernel fails the invariant checks."""
    interacting = interacting_modules(model)
    if interacting:
        raise FastNTKUnsupported(f"BatchNorm {interacting[0]!r} uses batch statistics "
                                 "(train mode), so samples interact")
    shared = shared_parameters(model)
    if shared:
        raise FastNTKUnsupported(f"parameter {shared[0]!r} is shared between modules")
    n = len(x)
    kernel = KernelAccumulator(n, x.device)
    expanded = {name: p.detach().expand(n, *p.shape[1:]).clone().requires_grad_(True)
                for name, p in model.named_parameters()
                if p.requires_grad and p.dim() >= 2 and p.shape[0] == 1
                and per_sample_rule(owner(model, name)) is None}
    params = {name: expanded.get(name, p) for name, p in model.named_parameters() if p.requires_grad}
    x = x.detach().requires_grad_(True)
    with PerSampleHooks(model, kernel, skip=set(expanded), batch_size=n) as hooks:
        output = functional_call(model, expanded, (x,), strict=False).reshape(n, -1).sum(dim=1)
        hooks.check_forward()
        summed = torch.autograd.grad(output.sum(), [*params.values()], retain_graph=True,
                                     allow_unused=True, materialize_grads=True)
        hooks.active = False
        weights = kernel.probes[:, 1].to(output.dtype)
        weighted = torch.autograd.grad((output * weights).sum(), [*params.values()],
                                       allow_unused=True, materialize_grads=True)
    for name, per_sample in zip(params, summed):
        if name in expanded:
            kernel.add_gram(per_sample, name)
    kernel.check(params, expanded, summed, weighted)
    return kernel.kernel


def shared_parameters(model: nn.Module) -> list[str]:
    seen: dict[int, str] = {}
    shared = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            shared.append(seen[id(p)])
        seen.setdefault(id(p), name)
    return shared


def owner(model: nn.Module, param_name: str) -> nn.Module:
    return model.get_submodule(param_name.rpartition(".")[0])


class KernelAccumulator:
    """Θ in float64, summed over parameter tensors; each tensor's products in the model's dtype.

    For each parameter it also keeps 1ᵀΘ_p1, vᵀΘ_pv and tr Θ_p of its own share Θ_p, for the
    invariant checks (`check`); `probes` holds the columns 1 and v.
    """

    def __init__(self, n: int, device: torch.device):
        self.kernel = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.buffer: torch.Tensor | None = None
        weights = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        self.probes = torch.stack([torch.ones(n, dtype=torch.float64), weights], 1).to(device)
        self.forms: dict[str, torch.Tensor] = {}

    def add_block(self, rows: slice, block: torch.Tensor, name: str) -> None:
        """Add `block` (float64) to the kernel's `rows` as parameter `name`'s share."""
        self.kernel[rows] += block
        probes = self.probes[rows]
        forms = torch.stack([*((block @ self.probes) * probes).sum(dim=0),
                             block.diagonal(rows.start or 0).sum()])
        self.forms[name] = self.forms.get(name, 0) + forms

    def check(self, params: dict[str, torch.Tensor], expanded: dict, summed: list,
              weighted: list) -> None:
        """Raise FastNTKUnsupported unless every parameter's share of Θ satisfies 1ᵀΘ_p1 = ‖g_p‖²
        and vᵀΘ_pv = ‖g_v,p‖² (module docstring) to `check_tolerance` of the share's size,
        N·tr Θ_p·max v² (an upper bound of both sides). A share below ε of the whole kernel's size
        is round-off of Θ itself (e.g. the last block's relative key table under a class-token
        head, whose gradient is analytically 0), so sizes are floored at ε·N·tr Θ·max v²."""
        n = len(self.kernel)
        dtype = next(iter(params.values())).dtype
        tolerance = check_tolerance(dtype)
        scale = float(self.probes.abs().max()) ** 2 * n
        floor = torch.finfo(dtype).eps * scale * self.kernel.trace()
        zeros = torch.zeros(3, dtype=torch.float64, device=self.kernel.device)
        errors, sizes = [], []
        for name, g_one, g_v in zip(params, summed, weighted):
            if name in expanded:
                g_one, g_v = g_one.sum(dim=0), g_v.sum(dim=0)
            expected = torch.stack([g_one.to(torch.float64).square().sum(),
                                    g_v.to(torch.float64).square().sum()])
            forms = self.forms.get(name, zeros)
            sizes.append(torch.maximum(torch.maximum(forms[2] * scale, expected.max()), floor))
            errors.append((forms[:2] - expected).abs().max())
        # Compared all at once: one device-to-host transfer, not one per parameter tensor.
        errors, sizes = torch.stack(errors), torch.stack(sizes)
        failed = (errors > tolerance * sizes).nonzero().flatten().tolist()
        if failed:
            name, relative = list(params)[failed[0]], float(errors[failed[0]] / sizes[failed[0]])
            what = "gets no per-sample gradient" if name not in self.forms else (
                f"has per-sample gradients off by {relative:.2g} (relative)")
            raise FastNTKUnsupported(f"fast kernel check failed: parameter {name!r} {what}")

    def scratch(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor of `shape` in one buffer reused from layer to layer: a fresh
        allocation of this size costs page faults that take as long as the products in it."""
        numel = math.prod(shape)
        if self.buffer is None or self.buffer.dtype != like.dtype or len(self.buffer) < numel:
            self.buffer = like.new_empty(max(numel, CHUNK_ELEMENTS))
        return self.buffer[:numel].view(shape)

    def add_gram(self, per_sample: torch.Tensor, name: str) -> None:
        """Add ⟨g_i, g_j⟩ for parameter `name`'s per-sample gradients `per_sample` (N, ...)."""
        flat = per_sample.reshape(len(per_sample), -1)
        self.add_block(slice(0, len(flat)), (flat @ flat.T).to(torch.float64), name)

    def add_linear_map(self, a: torch.Tensor, g: torch.Tensor, name: str) -> None:
        """Add the kernel of the weight of y_t = W a_t applied to every token t: inputs a
        (N, groups, T, d_in) and output gradients g (N, groups, T, d_out); per-sample gradient
        G_iᵀA_i per group. Picks the cheaper of forming G_iᵀA_i and the token-Gram identity."""
        n, groups, tokens, d_in = a.shape
        d_out = g.shape[-1]
        materialise = n * groups * d_in * d_out * (tokens + n)
        token_gram = (n * tokens) ** 2 * groups * (d_in + d_out + 1)
        if token_gram < materialise:
            for group in range(groups):
                self.add_token_gram(a[:, group], g[:, group], name)
            return
        step = max(1, CHUNK_ELEMENTS // (n * groups * d_in))
        for start in range(0, d_out, step):
            g_slice = g[..., start:start + step].transpose(-1, -2)
            per_sample = self.scratch((n, groups, g_slice.shape[-2], d_in), a)
            # One batched product over samples and groups: on CUDA one launch instead of N; on
            # CPU the same values as N separate products (tests/proxies/test_ntk_batched.py),
            # without N parallel regions, which stall whenever another job holds a core.
            torch.matmul(g_slice, a, out=per_sample)
            self.add_gram(per_sample, name)

    def add_token_gram(self, a: torch.Tensor, g: torch.Tensor, name: str) -> None:
        """Θ_ij += Σ_ts (a_i a_jᵀ)_ts (g_i g_jᵀ)_ts for a (N, T, d_in), g (N, T, d_out)."""
        n, tokens = a.shape[:2]
        a_rows, g_rows = a.reshape(n * tokens, -1), g.reshape(n * tokens, -1)
        step = max(1, CHUNK_ELEMENTS // (n * tokens * tokens))
        for start in range(0, n, step):
            rows = slice(start * tokens, (start + step) * tokens)
            products = (a_rows[rows] @ a_rows.T) * (g_rows[rows] @ g_rows.T)
            block = products.reshape(-1, tokens, n, tokens).sum(dim=(1, 3))
            self.add_block(slice(start, start + len(block)), block.to(torch.float64), name)


def parameter_name(prefix: str, name: str) -> str:
    """The model-level name of a module's parameter (`prefix` "" is the model itself)."""
    return f"{prefix}.{name}" if prefix else name


def linear_rule(module: nn.Linear, a: torch.Tensor, g: torch.Tensor, kernel: KernelAccumulator,
                prefix: str):
    n = len(a)
    a, g = a.reshape(n, 1, -1, a.shape[-1]), g.reshape(n, 1, -1, g.shape[-1])
    if module.weight.requires_grad:
        kernel.add_linear_map(a, g, parameter_name(prefix, "weight"))
    if module.bias is not None and module.bias.requires_grad:
        kernel.add_gram(g.sum(dim=2), parameter_name(prefix, "bias"))


def conv2d_rule(module: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, kernel: KernelAccumulator,
                prefix: str):
    """A convolution is a linear map applied to every patch of its (zero-padded) input."""
    n, groups = len(a), module.groups
    if module.weight.requires_grad:
        patches = F.unfold(a, module.kernel_size, module.dilation, module.padding, module.stride)
        patches = patches.reshape(n, groups, -1, patches.shape[-1]).transpose(2, 3)
        grads = g.reshape(n, groups, g.shape[1] // groups, -1).transpose(2, 3)
        kernel.add_linear_map(patches, grads, parameter_name(prefix, "weight"))
    if module.bias is not None and module.bias.requires_grad:
        kernel.add_gram(g.sum(dim=(2, 3)), parameter_name(prefix, "bias"))


def normalisation_rule(module: nn.Module, a: torch.Tensor, g: torch.Tensor,
                       kernel: KernelAccumulator, prefix: str):
    """LayerNorm and eval-mode BatchNorm: y = x̂ w + b with a per-sample x̂, so the per-sample
    gradients are Σ G ⊙ x̂ and Σ G over every position that shares the affine parameter."""
    if isinstance(module, nn.LayerNorm):
        normalised = F.layer_norm(a, module.normalized_shape, eps=module.eps)
        width = math.prod(module.normalized_shape)
    else:  # channels last, so that both normalise the trailing dimension
        a, g = a.movedim(1, -1), g.movedim(1, -1)
        normalised = (a - module.running_mean) * torch.rsqrt(module.running_var + module.eps)
        width = module.num_features
    if module.weight is not None and module.weight.requires_grad:
        kernel.add_gram((g * normalised).reshape(len(a), -1, width).sum(dim=1),
                        parameter_name(prefix, "weight"))
    if module.bias is not None and module.bias.requires_grad:
        kernel.add_gram(g.reshape(len(a), -1, width).sum(dim=1), parameter_name(prefix, "bias"))


def per_sample_rule(module: nn.Module):
    """The closed-form per-sample rule for `module`, or None when it has none. A subclass that
    overrides `forward` may compute something else, so only the library's forwards qualify."""
    if type(module).forward is nn.Linear.forward:
        return linear_rule
    if (type(module).forward is nn.Conv2d.forward and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)):
        return conv2d_rule
    if type(module).forward is nn.LayerNorm.forward or (
            type(module).forward is _BatchNorm.forward and not samples_interact(module)):
        return normalisation_rule
    return None


class PerSampleHooks:
    """Forward hooks that, during the backward of one forward, fold every parameter's per-sample
    gradients into `kernel`, except the parameters named in `skip` (handled by the caller).

    Closed-form modules get `per_sample_rule`; each remaining parameter is differentiated by
    vmap(grad) over the nearest module around it whose first input carries the batch.
    """

    def __init__(self, model: nn.Module, kernel: KernelAccumulator, skip: set[str],
                 batch_size: int):
        self.kernel, self.batch_size = kernel, batch_size
        self.active = True  # off for the checks' second backward
        self.calls: dict[str, int] = defaultdict(int)
        self.batched: set[str] = set()
        self.modules = dict(model.named_modules())
        self.ruled = {name for name, m in self.modules.items()
                      if per_sample_rule(m) and any(p.requires_grad for p in m.parameters(False))}
        covered = {f"{m}.{p}".lstrip(".") for m in self.ruled
                   for p, _ in self.modules[m].named_parameters(recurse=False)}
        self.others = [name for name, p in model.named_parameters()
                       if p.requires_grad and name not in covered and name not in skip]
        self.enclosing: dict[str, list[str]] = {}  # module name -> parameter names it handles
        self.handles = []

    def __enter__(self):
        watched = set(self.ruled) | {prefix for name in self.others for prefix in prefixes(name)}
        for name in watched:
            hook = self.make_forward_hook(name)
            self.handles.append(self.modules[name].register_forward_hook(hook, with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()

    def make_forward_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict, output) -> None:
            self.calls[name] += 1
            if not self.carries_batch(args, kwargs, output):
                return
            self.batched.add(name)
            # Popped by the backward hook, so the input is freed once its layer is done.
            stash = {"inputs": args[0].detach()}
            rule = per_sample_rule(module) if name in self.ruled else None

            def on_gradient(g: torch.Tensor) -> None:
                if not self.active:
                    return
                if rule is not None:
                    rule(module, stash.pop("inputs"), g, self.kernel, name)
                else:
                    self.enclosing_rule(name, module, stash.pop("inputs"), args[1:], kwargs, g)

            output.register_hook(on_gradient)
        return hook

    def carries_batch(self, args: tuple, kwargs: dict, output) -> bool:
        """Whether a call maps a batch (first input) to a batch (output), all else unbatched."""
        n = self.batch_size
        rest = [*args[1:], *kwargs.values()]
        return (bool(args) and isinstance(args[0], torch.Tensor) and len(args[0]) == n
                and isinstance(output, torch.Tensor) and output.requires_grad
                and len(output) == n and not any(isinstance(v, torch.Tensor) for v in rest))

    def check_forward(self) -> None:
        """After the forward, before the backward: every hooked module ran once, and every other
        parameter has an enclosing module that took the batch."""
        for name in self.ruled:
            if self.calls[name] > 1:
                raise FastNTKUnsupported(f"module {name!r} is called {self.calls[name]} times")
            if self.calls[name] == 1 and name not in self.batched:
                raise FastNTKUnsupported(f"module {name!r} does not map the batch to the batch "
                                         "along the first dimension")
        for param in self.others:
            module = next((m for m in prefixes(param)
                           if self.calls[m] == 1 and m in self.batched), None)
            if module is None:
                raise FastNTKUnsupported(f"no module around parameter {param!r} takes the batch "
                                         "exactly once")
            self.enclosing.setdefault(module, []).append(param[len(module):].lstrip("."))

    def enclosing_rule(self, name: str, module: nn.Module, inputs: torch.Tensor, rest: tuple,
                       kwargs: dict, g: torch.Tensor) -> None:
        if name not in self.enclosing:
            return
        params = {p: module.get_parameter(p).detach() for p in self.enclosing[name]}

        def sample_output_dot(params: dict, x_i: torch.Tensor, g_i: torch.Tensor) -> torch.Tensor:
            out = functional_call(module, params, (x_i.unsqueeze(0), *rest), kwargs)
            return (out.squeeze(0) * g_i).sum()

        with torch.enable_grad():
            per_sample = vmap(grad(sample_output_dot), in_dims=(None, 0, 0))(params, inputs, g)
        for param, values in per_sample.items():
            self.kernel.add_gram(values, parameter_name(name, param))


def prefixes(param_name: str) -> list[str]:
    """Names of the modules around a parameter, innermost first ("" is the model)."""
    parts = param_name.split(".")[:-1]
    return [".".join(parts[:k]) for k in range(len(parts), -1, -1)]
