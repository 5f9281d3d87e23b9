package container

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/randid"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketContainers = []byte("containers") // ID -> Container
	bucketNames      = []byte("names")      // name -> ID
)

// Container is a container's record.
type Container struct {
	ID           string
	Name         string
	Created      time.Time
	Image        digest.Digest // the image's ID
	ImageName    string        // as the user gave it
	Config       *containertypes.Config
	HostConfig   *containertypes.HostConfig
	State        State
	RestartCount int
	// ManuallyStopped is set by stop and kill from a user, cleared by
	// start: an "unless-stopped" container stays stopped.
	ManuallyStopped bool
	Volumes         []VolumeMount
	Path            string
	Args            []string
	LogPath         string
	// Networks are the container's networks besides the one its network
	// mode names, and that one's settings (NetworkingConfig, connect),
	// keyed by network name.
	Networks map[string]*networktypes.EndpointSettings `json:",omitempty"`
	// NetworkDisconnected is set when a disconnect took the network the
	// mode named and left none (the mode is "none" since): a connect
	// gives it a network again, where one created with --network none
	// is refused, as Docker.
	NetworkDisconnected bool `json:",omitempty"`
	// ReadOnlyNonRecursive: its read-only binds are read-only at their
	// top only (it was created by a client before API 1.44, as Docker).
	ReadOnlyNonRecursive bool `json:",omitempty"`
}

// VolumeMount is a volume mounted into a container.
type VolumeMount struct {
	Name        string
	Destination string
	ReadOnly    bool
	NoCopy      bool
	Anonymous   bool
	Subpath     string `json:",omitempty"` // --mount's volume-subpath: the part of the volume bound
	// Labels and DriverOptions (--mount's volume-label, volume-opt) are
	// given to the volume when it is made.
	Labels        map[string]string `json:",omitempty"`
	DriverOptions map[string]string `json:",omitempty"`
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func newID() string {
	return randid.Hex(32)
}

// recordStore keeps container records in the metadata database.
type recordStore struct{ db *bolt.DB }

func (rs recordStore) init() error {
	return rs.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketContainers, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// add records a new container, reserving its name in the same transaction.
func (rs recordStore) add(c *Container) error {
	return rs.db.Update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketNames)
		if id := names.Get([]byte(c.Name)); id != nil {
			return errdefs.Conflict(fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", c.Name, id)) //lint:ignore ST1005 Docker's wording
		}
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if err := names.Put([]byte(c.Name), []byte(c.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketContainers).Put([]byte(c.ID), v)
	})
}

func noSuchContainer(ref string) error {
	//lint:ignore ST1005 Docker's wording
	return errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
}

// resolve finds a container by full ID, name ("/" optional) or unique ID
// prefix, as Docker does.
func resolve(tx *bolt.Tx, ref string) (string, error) {
	ctrs := tx.Bucket(bucketContainers)
	if ctrs.Get([]byte(ref)) != nil {
		return ref, nil
	}
	if id := tx.Bucket(bucketNames).Get([]byte(strings.TrimPrefix(ref, "/"))); id != nil {
		return string(id), nil
	}
	if ref == "" || strings.Trim(ref, "0123456789abcdef") != "" {
		return "", noSuchContainer(ref)
	}
	var match string
	n := 0
	c := ctrs.Cursor()
	for k, _ := c.Seek([]byte(ref)); k != nil && strings.HasPrefix(string(k), ref); k, _ = c.Next() {
		match = string(k)
		n++
	}
	switch n {
	case 0:
		return "", noSuchContainer(ref)
	case 1:
		return match, nil
	}
	return "", errdefs.InvalidParameter(fmt.Errorf("multiple IDs found with provided prefix: %s", ref))
}

func (rs recordStore) get(ref string) (*Container, error) {
	var c Container
	err := rs.db.View(func(tx *bolt.Tx) error {
		id, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		return json.Unmarshal(tx.Bucket(bucketContainers).Get([]byte(id)), &c)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// update changes a container's record in one transaction.
func (rs recordStore) update(id string, fn func(*Container) error) (*Container, error) {
	var c Container
	err := rs.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContainers)
		v := b.Get([]byte(id))
		if v == nil {
			return noSuchContainer(id)
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		nv, err := json.Marshal(&c)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// remove deletes a container's record if check, given the record as it
// is in the same transaction, allows it.
func (rs recordStore) remove(id string, check func(*Container) error) error {
	return rs.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContainers)
		var c Container
		if v := b.Get([]byte(id)); v != nil {
			json.Unmarshal(v, &c)
			if err := check(&c); err != nil {
				return err
			}
		}
		if c.Name != "" {
			tx.Bucket(bucketNames).Delete([]byte(c.Name))
		}
		return b.Delete([]byte(id))
	})
}

func (rs recordStore) rename(id, newName string) error {
	return rs.db.Update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketNames)
		if other := names.Get([]byte(newName)); other != nil {
			return errdefs.Conflict(fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", newName, other)) //lint:ignore ST1005 Docker's wording
		}
		b := tx.Bucket(bucketContainers)
		var c Container
		if err := json.Unmarshal(b.Get([]byte(id)), &c); err != nil {
			return err
		}
		names.Delete([]byte(c.Name))
		c.Name = newName
		v, _ := json.Marshal(&c)
		if err := names.Put([]byte(newName), []byte(id)); err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
}

func (rs recordStore) list() ([]*Container, error) {
	var out []*Container
	err := rs.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			var c Container
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, &c)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}
