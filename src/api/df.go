package api

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/diskusage"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	volumetypes "github.com/moby/moby/api/types/volume"
	digest "github.com/opencontainers/go-digest"
)

// legacyDiskUsage is GET /system/df's answer before API 1.52 (docker CLI
// 28 and older ask for it): every object listed, with its sizes.
type legacyDiskUsage struct {
	LayersSize int64
	Images     any // before 1.44 with VirtualSize
	Containers []containertypes.Summary
	Volumes    []volumetypes.Volume
	BuildCache []build.CacheRecord
}

// diskUsage is what both shapes are made from.
type diskUsage struct {
	layersSize int64
	images     []imagetypes.Summary
	imgReclaim int64
	containers []containertypes.Summary
	volumes    []volumetypes.Volume
}

// systemDF is GET /system/df: what "docker system df" shows. Layers shared
// by images count once in the total; an image's SharedSize is what it
// shares with others. Images and volumes in use by a container (running
// or not, as Docker counts) are active; the rest is reclaimable.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) error {
	want := map[string]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch t {
		case "container", "image", "volume", "build-cache":
			want[t] = true
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid type: %s", t))
		}
	}
	all := len(want) == 0
	du, err := s.diskUsage()
	if err != nil {
		return err
	}
	if version := RequestVersion(r.Context()); apiversion.Compare(version, "1.52") < 0 {
		out := legacyDiskUsage{LayersSize: du.layersSize, BuildCache: []build.CacheRecord{}}
		if all || want["image"] {
			out.Images = versionedSummaries(du.images, version)
		}
		if all || want["container"] {
			out.Containers = du.containers
		}
		if all || want["volume"] {
			out.Volumes = du.volumes
		}
		return writeJSON(w, http.StatusOK, out)
	}
	verbose := boolParam(r, "verbose")
	var out system.DiskUsage
	if all || want["image"] {
		u := &imagetypes.DiskUsage{TotalCount: int64(len(du.images)), TotalSize: du.layersSize, Reclaimable: du.imgReclaim}
		for _, i := range du.images {
			if i.Containers > 0 {
				u.ActiveCount++
			}
		}
		if verbose {
			u.Items = du.images
		}
		out.ImageUsage = u
	}
	if all || want["container"] {
		u := &containertypes.DiskUsage{TotalCount: int64(len(du.containers))}
		for _, c := range du.containers {
			u.TotalSize += c.SizeRw
			if c.State == containertypes.StateRunning || c.State == containertypes.StatePaused {
				u.ActiveCount++
			} else {
				u.Reclaimable += c.SizeRw
			}
		}
		if verbose {
			u.Items = du.containers
		}
		out.ContainerUsage = u
	}
	if all || want["volume"] {
		u := &volumetypes.DiskUsage{TotalCount: int64(len(du.volumes))}
		for _, v := range du.volumes {
			u.TotalSize += v.UsageData.Size
			if v.UsageData.RefCount > 0 {
				u.ActiveCount++
			} else {
				u.Reclaimable += v.UsageData.Size
			}
		}
		if verbose {
			u.Items = du.volumes
		}
		out.VolumeUsage = u
	}
	if all || want["build-cache"] {
		out.BuildCacheUsage = &build.DiskUsage{} // no builder, no cache
	}
	return writeJSON(w, http.StatusOK, out)
}

// layerShares is each layer of imgs with its size and the number of
// images holding it.
func (s *Server) layerShares(imgs []image.Image) (size map[digest.Digest]int64, images map[digest.Digest]int) {
	size, images = map[digest.Digest]int64{}, map[digest.Digest]int{}
	for _, img := range imgs {
		for _, chain := range img.ChainIDs {
			if _, ok := size[chain]; !ok {
				if l, err := s.cfg.Images.Layer(chain); err == nil {
					size[chain] = l.Size
				}
			}
			images[chain]++
		}
	}
	return size, images
}

// sharedSize is the size of img's layers that other images hold too.
func sharedSize(img image.Image, size map[digest.Digest]int64, images map[digest.Digest]int) int64 {
	var n int64
	for _, chain := range img.ChainIDs {
		if images[chain] > 1 {
			n += size[chain]
		}
	}
	return n
}

func (s *Server) diskUsage() (*diskUsage, error) {
	imgs, err := s.cfg.Images.List()
	if err != nil {
		return nil, err
	}
	ctrs, err := s.cfg.Containers.List()
	if err != nil {
		return nil, err
	}
	vols, err := s.cfg.Volumes.List()
	if err != nil {
		return nil, err
	}
	du := &diskUsage{images: []imagetypes.Summary{}, containers: []containertypes.Summary{}, volumes: []volumetypes.Volume{}}

	users := map[string]int64{} // image ID -> containers
	for _, c := range ctrs {
		users[c.Image.String()]++
	}
	layerSize, layerImages := s.layerShares(imgs)
	inUse := map[digest.Digest]bool{} // layers of images some container uses
	for _, img := range imgs {
		for _, chain := range img.ChainIDs {
			if users[img.ID.String()] > 0 {
				inUse[chain] = true
			}
		}
	}
	for chain, n := range layerSize {
		du.layersSize += n
		if !inUse[chain] {
			du.imgReclaim += n
		}
	}
	for _, img := range imgs {
		sum := s.imageSummary(img, img.RepoTags)
		sum.Containers = users[img.ID.String()]
		sum.SharedSize = sharedSize(img, layerSize, layerImages)
		du.images = append(du.images, sum)
	}

	now := time.Now()
	sizes := map[string]int64{} // image ID -> size, for SizeRootFs
	for _, i := range du.images {
		sizes[i.ID] = i.Size
	}
	for _, c := range ctrs {
		sum := s.containerSummary(c, now)
		sum.SizeRw = s.cfg.Containers.SizeRw(c.ID)
		sum.SizeRootFs = sum.SizeRw + sizes[c.Image.String()]
		du.containers = append(du.containers, sum)
	}
	for _, v := range vols {
		vj := volumeJSON(v)
		size, err := diskusage.Dir(v.Mountpoint)
		if err != nil {
			size = -1 // as Docker reports a size it could not read
		}
		vj.UsageData = &volumetypes.UsageData{Size: size, RefCount: int64(len(s.cfg.Containers.VolumeUsers(v.Name)))}
		du.volumes = append(du.volumes, vj)
	}
	slices.SortFunc(du.containers, func(a, b containertypes.Summary) int { return int(b.Created - a.Created) })
	return du, nil
}
