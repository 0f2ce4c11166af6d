// Training progress: one event per optimizer step; a redrawn progress line on a terminal, swift-log lines
// otherwise (pipes, files, CI logs).
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `AdapterTrainer` reports after each optimizer step.
public struct TrainingProgressEvent: Sendable, Equatable {
    /// Steps done so far (1-based: the step just finished), including steps before a resumed checkpoint.
    public var step: Int
    /// Steps of the whole run (`⌈examples / batch⌉ · epochs`).
    public var totalSteps: Int
    /// 0-based epoch of the step.
    public var epoch: Int
    /// The step's loss (see `AdapterTrainingResult.losses`).
    public var loss: Float
    /// AdapterDrop's n for the step.
    public var droppedLayers: Int
    /// Training examples per second of wall-clock time, averaged over this call's steps.
    public var examplesPerSecond: Double
    /// Seconds since this call started.
    public var elapsedSeconds: Double
    /// Estimated seconds to the end (remaining steps × mean step time of this call).
    public var etaSeconds: Double
    /// Steps skipped so far for non-finite values.
    public var skippedSteps: Int
}

/// Receives training progress events (from the training thread).
public protocol TrainingProgressReporter: AnyObject {
    /// Called after every optimizer step.
    func report(_ event: TrainingProgressEvent)
    /// Called once when `train` returns normally.
    func finish()
}

/// Progress on standard error: a progress line redrawn in place (`\r`) with a bar, loss (and its mean over the
/// last 20 steps), examples/s and ETA when standard error is a terminal; otherwise a swift-log `info` line
/// every `logEvery` steps and at the last step (label `AdapterDrop.Training`).
public final class ConsoleTrainingProgress: TrainingProgressReporter {
    /// Whether the progress line is drawn (true when stderr is a terminal, by default).
    public let isTerminal: Bool
    /// Steps between log lines when not on a terminal (≥ 1).
    public let logEvery: Int
    private let logger: Logger
    private var recent: [Float] = []
    private var lastDraw: Double = -1
    private var lastEvent: TrainingProgressEvent?

    /// - Parameters:
    ///   - isTerminal: draw a progress line; default `isatty(2)`.
    ///   - logEvery: steps between log lines in log mode (clamped to ≥ 1).
    ///   - logger: where log-mode lines go.
    public init(isTerminal: Bool = isatty(2) == 1, logEvery: Int = 10,
                logger: Logger = Logger(label: "AdapterDrop.Training")) {
        self.isTerminal = isTerminal
        self.logEvery = max(1, logEvery)
        self.logger = logger
    }

    /// `h:mm:ss` or `m:ss`.
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    /// The text of one event (without bar): `step 12/120 epoch 1 n=3 loss 0.6931 (avg20 0.7012) 45.2 ex/s ETA 0:35`.
    public func line(_ e: TrainingProgressEvent) -> String {
        let mean = recent.isEmpty ? e.loss : recent.reduce(0, +) / Float(recent.count)
        var text = String(format: "step %ld/%ld epoch %ld n=%ld loss %.4f (avg%ld %.4f) %.1f ex/s",
                          e.step, e.totalSteps, e.epoch + 1, e.droppedLayers, Double(e.loss), recent.count, Double(mean),
                          e.examplesPerSecond) + " ETA " + Self.clock(e.etaSeconds)
        if e.skippedSteps > 0 { text += " skipped \(e.skippedSteps)" }
        return text
    }

    /// Redraws the progress line (terminal, at most ~10 times a second and at the last step) or logs it every
    /// `logEvery` steps; keeps the last 20 losses for the moving average.
    public func report(_ e: TrainingProgressEvent) {
        recent.append(e.loss)
        if recent.count > 20 { recent.removeFirst() }
        lastEvent = e
        if isTerminal {
            // Redraw at most ~10 times a second, and always at the last step.
            guard e.elapsedSeconds - lastDraw >= 0.1 || e.step == e.totalSteps else { return }
            lastDraw = e.elapsedSeconds
            let width = 24, filled = e.totalSteps == 0 ? width : width * e.step / e.totalSteps
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(line(e))".utf8))
        } else if e.step % logEvery == 0 || e.step == e.totalSteps {
            logger.info("\(line(e))")
        }
    }

    /// Ends the redrawn line with a newline (terminal only).
    public func finish() {
        if isTerminal, lastEvent != nil { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
