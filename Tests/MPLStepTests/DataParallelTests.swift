import MPLAutodiff
import MPLIR
import MPLModel
import Testing

@testable import MPLStep

/// Data parallelism (docs/STEP.md, "Ranks"): the step compiled for R ranks, run in lock step by the Double
/// interpreter on the R shards of a global batch, against the step for one process on the whole batch.
@Suite("Data-parallel steps: R ranks on shards of a batch are one process on the batch")
struct DataParallelTests {
    /// BatchNorm in both networks (the statistics must be those of the global batch), dense so that it is fast.
    /// Batches of 4 labeled and 8 unlabeled rows, 8 finetuning rows: they divide over 2 and 4 ranks.
    static func model(_ pseudo: PseudoLabels, feedback: Feedback = .dotProduct) -> Model {
        let net = Network(
            name: "n",
            layers: [
                .dense(units: 5), .batchNorm(momentum: 0.2, epsilon: 1e-3), .activation(.tanh),
                .dense(units: 4), .batchNorm(momentum: 0.1, epsilon: 1e-3), .activation(.relu), .dense(units: 3),
            ])
        var recipe = TinyModels.recipe(pseudo, feedback: feedback)
        (recipe.labeledBatch, recipe.finetune.batch) = (4, 8)
        return Model(
            name: "tiny_bn", input: .features(4), classes: 3, teacher: net, student: net, recipe: recipe)
    }

    static let scalars = ["lr_teacher": 0.3, "lr_student": 0.2, "uda_weight": 0.7, "feedback_scale": 1, "lr": 0.2]

    /// Rank `rank`'s inputs: its rows of each batch block (x is [labeled; weak; strong], teacher_x
    /// [labeled; unlabeled]); state and scalars as they are.
    static func shard(
        _ env: [String: [Double]], of graph: Graph, rank: Int, ranks: Int, labeled: Int, unlabeled: Int
    ) -> [String: [Double]] {
        var out = env
        for (name, value) in graph.inputs {
            let shape = graph.shape(of: value)
            let blocks: [Int]
            switch name {
            case "x" where labeled == 0: blocks = [shape[0]]  // the supervised step: one block
            case "x": blocks = [labeled, unlabeled, unlabeled]
            case "teacher_x": blocks = [labeled, unlabeled]
            case "y": blocks = [shape[0]]
            case "uniform": blocks = [unlabeled]
            default:
                precondition(!name.hasPrefix("dropout/"), "masks are not sharded here")
                continue
            }
            let rowFloats = shape.count / shape[0]
            let data = env[name]!
            var rows: [Double] = []
            var start = 0
            for block in blocks {
                let share = block / ranks
                let first = (start + rank * share) * rowFloats
                rows += data[first..<(first + share * rowFloats)]
                start += block
            }
            out[name] = rows
        }
        return out
    }

    /// Every result of every rank against the one process's, within `tolerance` (relative to max(1, |value|)).
    static func expectSame(
        _ ranks: [[String: [Double]]], _ single: [String: [Double]], tolerance: Double = 1e-10,
        _ what: String
    ) {
        for (rank, results) in ranks.enumerated() {
            #expect(Set(results.keys) == Set(single.keys))
            for (name, expected) in single {
                let got = results[name]!
                let error = zip(got, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(error <= tolerance, "\(what), rank \(rank): \(name) differs by \(error)")
            }
        }
    }

    @Test(
        "The MPL step on R ranks gives the new state and outputs of one process",
        arguments: [
            (PseudoLabels.hardArgmax, Feedback.dotProduct), (.hardArgmax, .lossDifference),
            (.soft(temperature: 1.5), .dotProduct),
        ], [2, 4])
    func mplStep(_ mode: (PseudoLabels, Feedback), ranks: Int) throws {
        let model = Self.model(mode.0, feedback: mode.1)
        let single = StepBuilder(model: model).mplStep()
        let parallel = StepBuilder(model: model, ranks: ranks).mplStep()
        let env = TinyModels.inputs(for: single, seed: 11, scalars: Self.scalars)
        let expected = try Interpreter.results(single.graph, inputs: env)
        let shards = (0..<ranks).map {
            Self.shard(
                env, of: single.graph, rank: $0, ranks: ranks, labeled: model.recipe.labeledBatch,
                unlabeled: model.recipe.unlabeledBatch)
        }
        let results = try Interpreter.results(parallel.graph, ranks: shards)
        Self.expectSame(results, expected, "\(mode) on \(ranks) ranks")
        // Not vacuous: the step moved the state, and h is not 0.
        #expect(expected["h"]![0] != 0)
        #expect(expected["teacher/dense0/weight"]! != env["teacher/dense0/weight"]!)
    }

    /// Hard-sampled labels (the uniform draws are sharded too), the student trained by Adam (the feedback goes
    /// through its preconditioner), and Reduced MPL (teacher_x sharded as [labeled; unlabeled]).
    @Test(
        "Other recipes on 2 ranks: hard-sampled labels, an Adam student, Reduced MPL",
        arguments: ["hard-sampled", "adam", "reduced"])
    func otherRecipes(_ variant: String) throws {
        var model: Model
        switch variant {
        case "hard-sampled": model = Self.model(.hardSampled, feedback: .lossDifference)
        case "adam": model = TinyModels.adamStudent(Self.model(.soft(temperature: 1.5)))
        default: model = TinyModels.reduced(.hardArgmax)
        }
        (model.recipe.labeledBatch, model.recipe.finetune.batch) = (4, 8)
        let single = StepBuilder(model: model).mplStep()
        let env = TinyModels.inputs(for: single, seed: 23, scalars: Self.scalars)
        let expected = try Interpreter.results(single.graph, inputs: env)
        let shards = (0..<2).map {
            Self.shard(
                env, of: single.graph, rank: $0, ranks: 2, labeled: model.recipe.labeledBatch,
                unlabeled: model.recipe.unlabeledBatch)
        }
        let results = try Interpreter.results(StepBuilder(model: model, ranks: 2).mplStep().graph, ranks: shards)
        Self.expectSame(results, expected, variant)
        #expect(expected["h"]![0] != 0)
    }

    @Test("The supervised step on R ranks gives the new state and loss of one process", arguments: [2, 4])
    func supervisedStep(ranks: Int) throws {
        let model = Self.model(.hardArgmax)
        let single = StepBuilder(model: model).supervisedStep()
        let parallel = StepBuilder(model: model, ranks: ranks).supervisedStep()
        let env = TinyModels.inputs(for: single, seed: 5, scalars: Self.scalars)
        let expected = try Interpreter.results(single.graph, inputs: env)
        let shards = (0..<ranks).map {
            Self.shard(env, of: single.graph, rank: $0, ranks: ranks, labeled: 0, unlabeled: 0)
        }
        Self.expectSame(try Interpreter.results(parallel.graph, ranks: shards), expected, "supervised, \(ranks) ranks")
    }

    @Test("One rank's step has no all-reduce; R ranks' steps have them")
    func noAllReduceForOneRank() {
        func count(_ graph: Graph) -> Int {
            graph.values.filter { if case .allReduceSum = graph.op(of: $0) { return true } else { return false } }
                .count
        }
        let model = Self.model(.hardArgmax)
        #expect(count(StepBuilder(model: model).mplStep().graph) == 0)
        #expect(count(StepBuilder(model: model).supervisedStep().graph) == 0)
        #expect(count(StepBuilder(model: model, ranks: 2).mplStep().graph) > 0)
    }
}
