/// Version of the AdapterDrop library.
public let adapterDropVersion = "0.1.0"
