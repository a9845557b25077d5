/* lesionseg report viewer: NiiVue (niivue.umd.js, beside this file) showing a scan and its cord and lesion
 * masks, which the report embeds as base64 NIfTI in window.LESIONSEG. lesionseg writes this file once per output
 * folder; every report of the folder loads it. Radiological convention (patient's right on the viewer's left),
 * sagittal views anterior on the left, orientation letters; mouse wheel scrolls slices, right-drag sets the
 * window, controls for the rest.
 */
(function () {
  "use strict";
  const scan = window.LESIONSEG;
  const PLANES = { axial: 0, coronal: 1, sagittal: 2, all: 3 };

  function labelColormap(names, rgb) {
    // value 0 transparent, value i named names[i - 1] in the location readout
    const count = names.length + 1;
    const cm = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [""] };
    for (let i = 1; i < count; i++) {
      const colour = rgb(i);
      cm.R.push(colour[0]); cm.G.push(colour[1]); cm.B.push(colour[2]); cm.A.push(255); cm.I.push(i);
      cm.labels.push(names[i - 1]);
    }
    return cm;
  }

  function lesionColour(i) {
    const palette = [[255, 40, 40], [255, 140, 0], [255, 0, 200], [255, 230, 0], [0, 230, 120], [160, 80, 255]];
    return palette[(i - 1) % palette.length];
  }

  async function overlay(base64, name, colormap, opacity) {
    const volume = await niivue.NVImage.loadFromBase64({ base64: base64, name: name + ".nii.gz", opacity: opacity });
    volume.setColormapLabel(colormap);
    return volume;
  }

  function bindControls(nv, layers) {
    const byId = (id) => document.getElementById(id);
    for (const [name, index] of Object.entries(layers)) {
      const box = byId("show-" + name), shown = nv.volumes[index].opacity;
      if (box) box.addEventListener("change", () => { nv.setOpacity(index, box.checked ? shown : 0); });
    }
    document.querySelectorAll("[data-plane]").forEach((button) => {
      button.addEventListener("click", () => nv.setSliceType(PLANES[button.dataset.plane]));
    });
    const zoom = (factor) => {
      const pan = nv.scene.pan2Dxyzmm.slice();
      pan[3] = Math.min(8, Math.max(0.5, pan[3] * factor));
      nv.setPan2Dxyzmm(pan);
    };
    byId("zoom-in").addEventListener("click", () => zoom(1.25));
    byId("zoom-out").addEventListener("click", () => zoom(0.8));
    byId("zoom-reset").addEventListener("click", () => nv.setPan2Dxyzmm([0, 0, 0, 1]));
    const low = byId("window-low"), high = byId("window-high");
    low.value = nv.volumes[0].cal_min.toPrecision(4);
    high.value = nv.volumes[0].cal_max.toPrecision(4);
    const setWindow = () => {
      nv.volumes[0].cal_min = Number(low.value);
      nv.volumes[0].cal_max = Number(high.value);
      nv.updateGLVolume();
    };
    low.addEventListener("change", setWindow);
    high.addEventListener("change", setWindow);
    nv.onIntensityChange = (volume) => {
      if (volume === nv.volumes[0]) { low.value = volume.cal_min.toPrecision(4); high.value = volume.cal_max.toPrecision(4); }
    };
  }

  function jumpTo(nv, voxel) {
    // the scan is stored in RAS order: NiiVue's voxel grid is ours, a voxel centre is at (index + 0.5) / size
    const dims = nv.volumes[0].dimsRAS;
    nv.scene.crosshairPos = [0, 1, 2].map((axis) => (voxel[axis] + 0.5) / dims[axis + 1]);
    nv.drawScene();
    nv.createOnLocationChange();
  }

  async function start() {
    const nv = new niivue.Niivue({
      backColor: [0, 0, 0, 1], isRadiologicalConvention: true, isOrientationTextVisible: true, sagittalNoseLeft: true,
      multiplanarShowRender: 0, show3Dcrosshair: false, crosshairColor: [1, 1, 0, 0.5], isColorbar: false,
    });
    await nv.attachTo("lesionseg-canvas");
    nv.onLocationChange = (data) => {
      document.getElementById("location").textContent = data.string;
      window.lesionsegLocation = data;
    };
    nv.addVolume(await niivue.NVImage.loadFromBase64({ base64: scan.volumes.image, name: "scan.nii.gz" }));
    const layers = {};
    if (scan.volumes.cord) {
      nv.addVolume(await overlay(scan.volumes.cord, "cord", labelColormap(["cord"], () => [0, 170, 255]), 0.35));
      layers.cord = nv.volumes.length - 1;
    }
    if (scan.volumes.lesions) {
      const names = scan.lesions.map((lesion) => "lesion " + lesion.id);
      nv.addVolume(await overlay(scan.volumes.lesions, "lesions", labelColormap(names, lesionColour), 0.9));
      layers.lesions = nv.volumes.length - 1;
    }
    nv.setRadiologicalConvention(true);
    nv.setSliceType(PLANES[scan.plane] ?? PLANES.all);
    bindControls(nv, layers);
    document.querySelectorAll("tr[data-lesion]").forEach((row) => {
      row.addEventListener("click", () => {
        const lesion = scan.lesions.find((l) => String(l.id) === row.dataset.lesion);
        if (lesion) jumpTo(nv, lesion.voxel);
      });
    });
    if (scan.lesions.length) jumpTo(nv, scan.lesions[0].voxel);
    window.lesionsegViewer = nv;
    document.getElementById("viewer").dataset.ready = "true";
  }

  start().catch((error) => {
    const status = document.getElementById("viewer-status");
    status.textContent = "The interactive viewer could not start (" + error + "); the static summary below shows the result.";
    document.getElementById("viewer").dataset.ready = "failed";
  });
})();
