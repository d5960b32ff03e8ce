// model.json: the model in the schema of Tests/reference/mpl_jax.py, so the independent JAX reference
// computes the same step from the same weights. Written by hand (fixed key order) to stay deterministic.

import MPLModel

enum ReferenceSpec {
    static func json(for model: Model) -> String {
        let recipe = model.recipe
        let input: String
        switch model.input {
        case .image(let c, let h, let w): input = "{\"height\": \(h), \"width\": \(w), \"channels\": \(c)}"
        case .features(let d): input = "{\"features\": \(d)}"
        }
        let (pseudo, temperature): (String, Double)
        switch recipe.pseudoLabels {
        case .hardArgmax: (pseudo, temperature) = ("hard-argmax", 1)
        case .hardSampled: (pseudo, temperature) = ("hard-sampled", 1)
        case .soft(let t): (pseudo, temperature) = ("soft", t)
        }
        func optimizer(_ o: Optimizer) -> String {
            switch o.rule {
            case .sgd(let s):
                return "{\"momentum\": \(s.momentum), \"nesterov\": \(s.nesterov), \"weight_decay\": \(s.weightDecay)}"
            case .adam(let a):
                return "{\"optimizer\": \"\(o.name.lowercased())\", \"beta1\": \(a.beta1), \"beta2\": \(a.beta2), "
                    + "\"epsilon\": \(a.epsilon), \"weight_decay\": \(a.weightDecay)}"
            }
        }
        return """
            {
              "input": \(input),
              "classes": \(model.classes),
              "teacher": \(layers(model.teacher)),
              "student": \(layers(model.student)),
              "recipe": {
                "labeled_batch": \(recipe.labeledBatch),
                "unlabeled_batch": \(recipe.unlabeledBatch),
                "pseudo_labels": "\(pseudo)",
                "soft_temperature": \(temperature),
                "pseudo_label_view": "\(recipe.pseudoLabelsFrom == .weakView ? "weak" : "strong")",
                "feedback": "\(recipe.feedback == .lossDifference ? "loss-difference" : "dot-product")",
                "uda_temperature": \(recipe.uda.temperature),
                "uda_threshold": \(recipe.uda.threshold),
                "label_smoothing": \(recipe.labelSmoothing),
                "teacher": \(optimizer(recipe.teacherOptimizer)),
                "student": \(optimizer(recipe.studentOptimizer))
              }
            }

            """
    }

    static func layers(_ network: Network) -> String { layers(network.layers, indent: "  ") }

    static func layers(_ list: [Layer], indent: String) -> String {
        let items = list.map { layer -> String in
            switch layer {
            case .dense(let units): return "{\"layer\": \"dense\", \"units\": \(units)}"
            case .conv2D(let f, let k, let s, let p):
                return
                    "{\"layer\": \"conv2d\", \"filters\": \(f), \"kernel\": \(k), \"stride\": \(s), \"padding\": \(p)}"
            case .maxPool2D(let k, let s): return "{\"layer\": \"maxpool\", \"size\": \(k), \"stride\": \(s)}"
            case .avgPool2D(let k, let s): return "{\"layer\": \"avgpool\", \"size\": \(k), \"stride\": \(s)}"
            case .globalAvgPool: return "{\"layer\": \"globalavgpool\"}"
            case .flatten: return "{\"layer\": \"flatten\"}"
            case .activation(let activation):
                var json = "{\"layer\": \"\(activation.referenceName)\""
                if let label = activation.kind.argument?.label, let value = activation.argument {
                    json += ", \"\(label)\": \(value)"
                }
                return json + "}"
            case .dropout(let rate): return "{\"layer\": \"dropout\", \"rate\": \(rate)}"
            case .batchNorm(let momentum, let epsilon):
                return "{\"layer\": \"batchnorm\", \"momentum\": \(momentum), \"epsilon\": \(epsilon)}"
            case .residual(let body):
                return "{\"layer\": \"residual\", \"body\": \(layers(body, indent: indent + "  "))}"
            }
        }
        return "[\n  \(indent)" + items.joined(separator: ",\n  \(indent)") + "\n\(indent)]"
    }
}
