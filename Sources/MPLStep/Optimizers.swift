// The optimisers as graph equations (docs/STEP.md, step 6): each rule's state tensors, its update, and what the
// teacher's feedback needs to know about the student's step (step 8). Adding an optimiser means a case of
// MPLModel's `UpdateRule` and its three parts here; the MPL maths in StepBuilder uses only `OptimizerStep`.

import MPLAutodiff
import MPLIR
import MPLModel

extension UpdateRule {
    /// The optimiser's state for `network`, every tensor starting at zero (the runner zeroes all state outside
    /// `teacher/` and `student/`). It lives under `<network>_momentum/`, which finetuning resets for the student.
    /// SGD: one velocity per trained tensor, with the tensor's suffix. Adam: the moments `m/<suffix>` and
    /// `v/<suffix>`, and the two bias corrections 1 − β1^t and 1 − β2^t as scalars (0 before the first step).
    func state(of network: NetworkParameters) -> [TensorInfo] {
        let prefix = network.prefix + "_momentum"
        switch self {
        case .sgd:
            return network.renamed(to: prefix)
        case .adam:
            return network.renamed(to: prefix + "/m") + network.renamed(to: prefix + "/v")
                + [
                    TensorInfo(name: prefix + "/m_correction", shape: .scalar),
                    TensorInfo(name: prefix + "/v_correction", shape: .scalar),
                ]
        }
    }

    /// Appends one step of `network`'s trained tensors, given their gradients and this step's learning rate.
    func update(_ g: inout Graph, network: NetworkParameters, gradients: [Value], learningRate: Value) -> OptimizerStep
    {
        var step = OptimizerStep(rule: self, learningRate: learningRate, gradients: gradients)
        let prefix = network.prefix + "_momentum"
        func state(_ name: String, _ shape: Shape) -> Value { g.input(named: name) ?? g.input(name, shape) }
        // `teacher/dense1/weight` is updated by `teacher/dense1 update`; the bias corrections by `teacher update`.
        let outer = g.origin
        defer { g.origin = outer }
        func updating(_ name: String) {
            g.origin = Origin(String(name[..<(name.lastIndex(of: "/") ?? name.endIndex)]), .update)
        }
        updating(network.prefix + "/")
        switch self {
        case .sgd(let s):
            for (info, gradient) in zip(network.infos, gradients) {
                updating(info.name)
                let theta = g.input(named: info.name)!
                let momentumName = prefix + info.name.dropFirst(network.prefix.count)
                let velocity = state(momentumName, info.shape)
                let decayed =
                    info.isWeight && s.weightDecay > 0 ? g.add(gradient, g.scale(theta, s.weightDecay)) : gradient
                let newVelocity = g.add(g.scale(velocity, s.momentum), decayed)
                let direction = s.nesterov ? g.add(decayed, g.scale(newVelocity, s.momentum)) : newVelocity
                let newTheta = g.sub(theta, g.scale(direction, by: learningRate))
                step.results.append((info.name, newTheta))
                step.results.append((momentumName, newVelocity))
            }
        case .adam(let a):
            // c' = β·c + (1 − β) turns c = 1 − β^t into 1 − β^(t+1) and starts from the zero every state starts at.
            func correction(_ name: String, _ beta: Double) -> Value {
                let c = g.add(g.scale(state(name, .scalar), beta), g.constant(1 - beta, .scalar))
                step.results.append((name, c))
                return c
            }
            let m1 = correction(prefix + "/m_correction", a.beta1)
            let m2 = correction(prefix + "/v_correction", a.beta2)
            for (info, gradient) in zip(network.infos, gradients) {
                updating(info.name)
                let suffix = info.name.dropFirst(network.prefix.count)
                let theta = g.input(named: info.name)!
                let decays = info.isWeight && a.weightDecay > 0
                let grad = decays && !a.decoupled ? g.add(gradient, g.scale(theta, a.weightDecay)) : gradient
                let m = g.add(g.scale(state(prefix + "/m" + suffix, info.shape), a.beta1), g.scale(grad, 1 - a.beta1))
                let v = g.add(
                    g.scale(state(prefix + "/v" + suffix, info.shape), a.beta2),
                    g.scale(g.mul(grad, grad), 1 - a.beta2))
                // √(v̂ + ε²) + ε, not √v̂ + ε: the two differ by less than ε, and this one has a finite derivative
                // where v̂ = 0, which the exact soft-label meta-gradient differentiates through (optax's eps_root).
                let vHat = g.div(v, g.broadcast(m2, to: info.shape, axes: []))
                let denominator = g.add(
                    g.unary(.sqrt, g.add(vHat, g.constant(a.epsilon * a.epsilon, info.shape))),
                    g.constant(a.epsilon, info.shape))
                // P: how the current gradient enters the step, θ − θ' ∋ lr·P ⊙ g (the preconditioner held fixed).
                let p = g.div(
                    g.constant(1 - a.beta1, info.shape), g.mul(g.broadcast(m1, to: info.shape, axes: []), denominator))
                let mHat = g.div(m, g.broadcast(m1, to: info.shape, axes: []))
                var direction = g.div(mHat, denominator)
                if decays && a.decoupled { direction = g.add(direction, g.scale(theta, a.weightDecay)) }
                step.results.append((info.name, g.sub(theta, g.scale(direction, by: learningRate))))
                step.results.append((prefix + "/m" + suffix, m))
                step.results.append((prefix + "/v" + suffix, v))
                step.preconditioners.append(p)
                step.directions.append(direction)
            }
        }
        return step
    }
}

/// One optimiser step as built into a graph: the new state, and the step's dependence on the gradient g that
/// the teacher's feedback needs (docs/STEP.md, "The feedback for any optimiser"). Write the step as
/// θ − θ' = scale·D(g): SGD has scale η_eff and D(g) = g (plus terms that do not depend on g); Adam has scale lr
/// and D(g) = m̂'/(√(v̂' + ε²) + ε) (+ weightDecay·θ for AdamW).
struct OptimizerStep {
    let rule: UpdateRule
    let learningRate: Value
    let gradients: [Value]
    /// The new parameters and optimiser state, by the names of the state tensors they replace.
    var results: [(name: String, value: Value)] = []
    /// Adam, per tensor: P, and the direction D(g).
    fileprivate var preconditioners: [Value] = []
    fileprivate var directions: [Value] = []
    private var cachedScale: Value?

    fileprivate init(rule: UpdateRule, learningRate: Value, gradients: [Value]) {
        self.rule = rule
        self.learningRate = learningRate
        self.gradients = gradients
    }

    /// The scale of the step: η_eff = lr·(1 + momentum) with Nesterov, lr without (SGD), lr (Adam).
    mutating func scale(_ g: inout Graph) -> Value {
        if let cachedScale { return cachedScale }
        let scale: Value
        switch rule {
        case .sgd(let s): scale = g.scale(learningRate, s.nesterov ? 1 + s.momentum : 1)
        case .adam: scale = learningRate
        }
        cachedScale = scale
        return scale
    }

    /// Per tensor, the part of D(g) that is linear in g with the preconditioner taken as computed: g (SGD), P ⊙ g
    /// (Adam). ⟨g_l, scale·this⟩ is the first-order h of hard pseudo labels.
    func firstOrder(_ g: inout Graph) -> [Value] {
        switch rule {
        case .sgd: return gradients
        case .adam: return zip(preconditioners, gradients).map { g.mul($0, $1) }
        }
    }

    /// Per tensor, (∂D/∂g)ᵀ·w with w constant: the tangent along which the soft-label meta-gradient differentiates
    /// the student's loss. The identity for SGD; for Adam the VJP of D through its update equations (the general
    /// autodiff), held constant for the teacher's gradient.
    func transposedJacobian(_ g: inout Graph, times w: [Value]) -> [Value] {
        switch rule {
        case .sgd:
            return w
        case .adam:
            return zip(zip(directions, gradients), w).map { pair, seed in
                g.append(.stopGradient(Autodiff.vjp(&g, output: pair.0, seed: seed, wrt: [pair.1])[0]))
            }
        }
    }
}
