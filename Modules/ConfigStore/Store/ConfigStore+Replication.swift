import ConfigModel

/// The store is the log the replication machines read.
extension ConfigStore: ReplicationLog {}
