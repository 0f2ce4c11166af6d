import ArgumentParser
import AdapterCore
import AdapterDrop

@main
struct AdapterDropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapterdrop",
        abstract: "Adapters, AdapterFusion and AdapterDrop for BERT-family encoders on the CPU.",
        version: adapterDropVersion
    )
}
