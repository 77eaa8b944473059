package proto

// RmdirArgs are RMDIR3args.
type RmdirArgs = DirOp

// RmdirRes is RMDIR3res.
type RmdirRes = WccRes
