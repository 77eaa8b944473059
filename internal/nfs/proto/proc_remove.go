package proto

// RemoveArgs are REMOVE3args.
type RemoveArgs = DirOp

// RemoveRes is REMOVE3res.
type RemoveRes = WccRes
