"""The empirical Neural Tangent Kernel Θ = J Jᵀ of a network on a batch (REFERENCE §3 and §5).

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
construction and says so in the method it returns.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn.modules.batchnorm import _BatchNorm

from proxies.common import UndefinedScore
from spaces.errors import BenchError

METHODS = ("auto", "fast", "naive")

# Largest per-layer temporary of the fast construction, in elements (64 MiB in float32): per-sample
# weight gradients are formed a slice of output units at a time, pairwise token Grams a row block
# at a time.
CHUNK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class EmpiricalNTK:
    """The kernel (N x N, float64), the construction that computed it ("fast" or "naive") and, when
    `auto` fell back to the naive one, why."""

    kernel: torch.Tensor
    method: str
    reason: str = ""


class FastNTKUnsupported(Exception):
    """The network breaks an assumption of the fast construction (interacting samples, a module
    called twice, a shared parameter, a parameter no module around it batches)."""


def ntk_kernel(model: nn.Module, x: torch.Tensor, method: str = "auto") -> EmpiricalNTK:
    """Θ = J Jᵀ of `model` on images `x`; `auto` is fast unless the network does not allow it."""
    if method not in METHODS:
        raise BenchError(f"unknown NTK method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "naive":
        return EmpiricalNTK(naive_ntk(model, x), "naive")
    try:
        return EmpiricalNTK(fast_ntk(model, x), "fast")
    except FastNTKUnsupported as err:
        if method == "fast":
            raise
        return EmpiricalNTK(naive_ntk(model, x), "naive", str(err))


def condition_number(kernel: torch.Tensor) -> float:
    """λ_max / λ_min of a symmetric positive semi-definite kernel, eigenvalues in float64."""
    eigenvalues = torch.linalg.eigvalsh(kernel.detach().to(torch.float64))
    smallest, largest = eigenvalues[0].item(), eigenvalues[-1].item()
    if not smallest > 0:
        raise UndefinedScore(f"the NTK is singular (smallest eigenvalue {smallest:.3g}), so its "
                             "condition number is infinite")
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
    apply to `model`."""
    interacting = [name for name, m in model.named_modules() if samples_interact(m)]
    if interacting:
        raise FastNTKUnsupported(f"BatchNorm {interacting[0]!r} uses batch statistics "
                                 "(train mode), so samples interact")
    shared = shared_parameters(model)
    if shared:
        raise FastNTKUnsupported(f"parameter {shared[0]!r} is shared between modules")
    kernel = KernelAccumulator(len(x), x.device)
    expanded = {name: p.detach().expand(len(x), *p.shape[1:]).clone().requires_grad_(True)
                for name, p in model.named_parameters()
                if p.requires_grad and p.dim() >= 2 and p.shape[0] == 1
                and per_sample_rule(owner(model, name)) is None}
    x = x.detach().requires_grad_(True)
    with PerSampleHooks(model, kernel, skip=set(expanded), batch_size=len(x)) as hooks:
        output = functional_call(model, expanded, (x,), strict=False)
        hooks.check_forward()
        grads = torch.autograd.grad(output.sum(), [x, *expanded.values()], allow_unused=True)
    for per_sample in grads[1:]:
        if per_sample is not None:
            kernel.add_gram(per_sample)
    return kernel.kernel


def samples_interact(module: nn.Module) -> bool:
    """BatchNorm normalising with the statistics of the batch mixes the samples."""
    return isinstance(module, _BatchNorm) and (module.training or module.running_mean is None)


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
    """Θ in float64, summed over parameter groups; each group's products in the model's dtype."""

    def __init__(self, n: int, device: torch.device):
        self.kernel = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.buffer: torch.Tensor | None = None

    def scratch(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor of `shape` in one buffer reused from layer to layer: a fresh
        allocation of this size costs page faults that take as long as the products in it."""
        numel = math.prod(shape)
        if self.buffer is None or self.buffer.dtype != like.dtype or len(self.buffer) < numel:
            self.buffer = like.new_empty(max(numel, CHUNK_ELEMENTS))
        return self.buffer[:numel].view(shape)

    def add_gram(self, per_sample: torch.Tensor) -> None:
        """Add ⟨g_i, g_j⟩ for per-sample gradients `per_sample` (N, ...)."""
        flat = per_sample.reshape(len(per_sample), -1)
        self.kernel += (flat @ flat.T).to(torch.float64)

    def add_linear_map(self, a: torch.Tensor, g: torch.Tensor) -> None:
        """Add the kernel of the weight of y_t = W a_t applied to every token t: inputs a
        (N, groups, T, d_in) and output gradients g (N, groups, T, d_out); per-sample gradient
        G_iᵀA_i per group. Picks the cheaper of forming G_iᵀA_i and the token-Gram identity."""
        n, groups, tokens, d_in = a.shape
        d_out = g.shape[-1]
        materialise = n * groups * d_in * d_out * (tokens + n)
        token_gram = (n * tokens) ** 2 * groups * (d_in + d_out + 1)
        if token_gram < materialise:
            for group in range(groups):
                self.add_token_gram(a[:, group], g[:, group])
            return
        step = max(1, CHUNK_ELEMENTS // (n * groups * d_in))
        for start in range(0, d_out, step):
            g_slice = g[..., start:start + step].transpose(-1, -2)
            per_sample = self.scratch((n, groups, g_slice.shape[-2], d_in), a)
            # One product per sample: torch's CPU bmm runs these thin products (inner dimension
            # = tokens) at about half the speed of separate matmuls.
            for i in range(n):
                torch.matmul(g_slice[i], a[i], out=per_sample[i])
            self.add_gram(per_sample)

    def add_token_gram(self, a: torch.Tensor, g: torch.Tensor) -> None:
        """Θ_ij += Σ_ts (a_i a_jᵀ)_ts (g_i g_jᵀ)_ts for a (N, T, d_in), g (N, T, d_out)."""
        n, tokens = a.shape[:2]
        a_rows, g_rows = a.reshape(n * tokens, -1), g.reshape(n * tokens, -1)
        step = max(1, CHUNK_ELEMENTS // (n * tokens * tokens))
        for start in range(0, n, step):
            rows = slice(start * tokens, (start + step) * tokens)
            products = (a_rows[rows] @ a_rows.T) * (g_rows[rows] @ g_rows.T)
            block = products.reshape(-1, tokens, n, tokens).sum(dim=(1, 3))
            self.kernel[start:start + step] += block.to(torch.float64)


def linear_rule(module: nn.Linear, a: torch.Tensor, g: torch.Tensor, kernel: KernelAccumulator):
    n = len(a)
    a, g = a.reshape(n, 1, -1, a.shape[-1]), g.reshape(n, 1, -1, g.shape[-1])
    if module.weight.requires_grad:
        kernel.add_linear_map(a, g)
    if module.bias is not None and module.bias.requires_grad:
        kernel.add_gram(g.sum(dim=2))


def conv2d_rule(module: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, kernel: KernelAccumulator):
    """A convolution is a linear map applied to every patch of its (zero-padded) input."""
    n, groups = len(a), module.groups
    if module.weight.requires_grad:
        patches = F.unfold(a, module.kernel_size, module.dilation, module.padding, module.stride)
        patches = patches.reshape(n, groups, -1, patches.shape[-1]).transpose(2, 3)
        grads = g.reshape(n, groups, g.shape[1] // groups, -1).transpose(2, 3)
        kernel.add_linear_map(patches, grads)
    if module.bias is not None and module.bias.requires_grad:
        kernel.add_gram(g.sum(dim=(2, 3)))


def normalisation_rule(module: nn.Module, a: torch.Tensor, g: torch.Tensor,
                       kernel: KernelAccumulator):
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
        kernel.add_gram((g * normalised).reshape(len(a), -1, width).sum(dim=1))
    if module.bias is not None and module.bias.requires_grad:
        kernel.add_gram(g.reshape(len(a), -1, width).sum(dim=1))


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
            if name in self.ruled:
                rule = per_sample_rule(module)
                output.register_hook(lambda g: rule(module, stash.pop("inputs"), g, self.kernel))
            else:
                output.register_hook(lambda g: self.enclosing_rule(
                    name, module, stash.pop("inputs"), args[1:], kwargs, g))
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
        self.kernel.add_gram(torch.cat([v.reshape(len(g), -1) for v in per_sample.values()], 1))


def prefixes(param_name: str) -> list[str]:
    """Names of the modules around a parameter, innermost first ("" is the model)."""
    parts = param_name.split(".")[:-1]
    return [".".join(parts[:k]) for k in range(len(parts), -1, -1)]
