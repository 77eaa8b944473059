package blocks

import (
	"bytes"
	"fmt"
)

// Encode returns the stored form of block id (the block file format: an
// 8-byte header, then the plaintext or the Sealer's output), as a header
// and a payload to write one after the other. Stores other than Dir (an
// object store) keep blocks in the same format.
func Encode(keys Keys, id ID, data []byte) (header, payload []byte, err error) {
	header = []byte{magic[0], magic[1], magic[2], fileVersion, modePlain, 0, 0, 0}
	payload = data
	if keys.Sealer != nil {
		header[4] = modeSealed
		if payload, err = keys.Sealer.Seal(id, data); err != nil {
			return nil, nil, fmt.Errorf("blocks: seal %s: %w", id, err)
		}
	}
	return header, payload, nil
}

// encodeTo is Encode into one buffer, appended to dst (the header, then
// the payload).
func encodeTo(dst []byte, keys Keys, id ID, data []byte) ([]byte, error) {
	mode := byte(modePlain)
	if keys.Sealer != nil {
		mode = modeSealed
	}
	dst = append(dst, magic[0], magic[1], magic[2], fileVersion, mode, 0, 0, 0)
	if keys.Sealer == nil {
		return append(dst, data...), nil
	}
	out, err := keys.Sealer.sealTo(dst, id, data)
	if err != nil {
		return nil, fmt.Errorf("blocks: seal %s: %w", id, err)
	}
	return out, nil
}

// Decode checks and opens the stored form of block id and proves its
// content: a bad header, a failed authentication or a plaintext whose
// keyed hash is not id is ErrCorrupt. Scrub and verification use it
// (Store.Get).
func Decode(keys Keys, id ID, raw []byte) ([]byte, error) { return decode(keys, id, raw, true, false) }

// decodeInPlace is Decode for raw that is the caller's to overwrite: a
// sealed block is opened over itself (no new buffer), then hashed.
func decodeInPlace(keys Keys, id ID, raw []byte) ([]byte, error) {
	return decode(keys, id, raw, true, true)
}

// DecodeStored is Decode, in place, checking what the stored form itself
// carries and no more: the read path (Dir.GetInto) and shipping
// (Dir.GetForCopy) use it. A sealed block is opened over raw and AES-GCM,
// whose additional data binds it to the lineage and to id, authenticates
// it; its keyed hash is not computed again. A plaintext block, which
// nothing else checks, is hashed in full.
func DecodeStored(keys Keys, id ID, raw []byte) ([]byte, error) {
	return decode(keys, id, raw, false, true)
}

func decode(keys Keys, id ID, raw []byte, deep, inPlace bool) ([]byte, error) {
	if len(raw) < headerSize || !bytes.Equal(raw[:3], magic) || raw[3] != fileVersion || !bytes.Equal(raw[5:8], []byte{0, 0, 0}) {
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorrupt, id)
	}
	payload := raw[headerSize:]
	switch raw[4] {
	case modePlain:
		if keys.Sealer != nil {
			return nil, fmt.Errorf("%w: %s: plaintext block in a sealed store", ErrCorrupt, id)
		}
	case modeSealed:
		if keys.Sealer == nil {
			return nil, fmt.Errorf("%w: %s: sealed block in a plaintext store", ErrCorrupt, id)
		}
		var err error
		if inPlace {
			payload, err = keys.Sealer.openInPlace(id, payload)
		} else {
			payload, err = keys.Sealer.Open(id, payload)
		}
		if err != nil || !deep {
			return payload, err
		}
	default:
		return nil, fmt.Errorf("%w: %s: unknown mode %d", ErrCorrupt, id, raw[4])
	}
	if keys.Hasher.Sum(payload) != id {
		return nil, fmt.Errorf("%w: %s: content does not match its id", ErrCorrupt, id)
	}
	return payload, nil
}
