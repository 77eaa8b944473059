package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// Portmapper v2 procedures.
const (
	PmapProcNull    = 0
	PmapProcSet     = 1
	PmapProcUnset   = 2
	PmapProcGetPort = 3
	PmapProcDump    = 4
	PmapProcCallIt  = 5
)

// Transport protocols of a mapping.
const (
	IPProtoTCP = 6
	IPProtoUDP = 17
)

// Mapping is a portmapper mapping (the GETPORT, SET and UNSET argument).
type Mapping struct {
	Prog, Vers, Prot, Port uint32
}

// Encode appends the mapping.
func (m *Mapping) Encode(e *xdr.Encoder) {
	e.Uint32(m.Prog)
	e.Uint32(m.Vers)
	e.Uint32(m.Prot)
	e.Uint32(m.Port)
}

// Decode reads a mapping.
func (m *Mapping) Decode(d *xdr.Decoder) {
	m.Prog, m.Vers, m.Prot, m.Port = d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()
}

// Uint32Res is a single unsigned int result (GETPORT's port).
type Uint32Res struct{ V uint32 }

// Encode appends the value.
func (r *Uint32Res) Encode(e *xdr.Encoder) { e.Uint32(r.V) }

// Decode reads the value.
func (r *Uint32Res) Decode(d *xdr.Decoder) { r.V = d.Uint32() }

// BoolRes is a single boolean result (SET, UNSET).
type BoolRes struct{ V bool }

// Encode appends the value.
func (r *BoolRes) Encode(e *xdr.Encoder) { e.Bool(r.V) }

// Decode reads the value.
func (r *BoolRes) Decode(d *xdr.Decoder) { r.V = d.Bool() }

// PmapDumpRes is the pmaplist DUMP returns.
type PmapDumpRes struct {
	Mappings []Mapping
}

// Encode appends the list.
func (r *PmapDumpRes) Encode(e *xdr.Encoder) {
	for i := range r.Mappings {
		e.Bool(true)
		r.Mappings[i].Encode(e)
	}
	e.Bool(false)
}

// Decode reads the list.
func (r *PmapDumpRes) Decode(d *xdr.Decoder) {
	r.Mappings = nil
	for d.Bool() && d.Err() == nil {
		var m Mapping
		m.Decode(d)
		if d.Err() != nil {
			return
		}
		r.Mappings = append(r.Mappings, m)
	}
}
