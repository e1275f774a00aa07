"""Writers for test files in each supported format, following each format's published layout.

They exist so every reader has a known-value round trip where no real sample file is available.
"""
from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np

X = np.round(np.arange(10.0, 30.0, 0.05), 4)            # 400 points, 2θ
Y = np.round(100 + 900 * np.exp(-((X - 20.0) / 0.1) ** 2), 0)  # one peak at 20°


def xy(p: Path, sep=" ", decimal=".", header="", ncol=2):
    lines = [header] if header else []
    for x, y in zip(X, Y):
        vals = [f"{x:.4f}", f"{y:.1f}", f"{np.sqrt(y):.3f}"][:ncol]
        lines.append(sep.join(v.replace(".", decimal) for v in vals))
    p.write_text("\n".join(lines) + "\n")


def fullprof(p: Path):
    body = "\n".join(" ".join(f"{v:8.0f}" for v in Y[i:i + 10]) for i in range(0, Y.size, 10))
    p.write_text(f"{X[0]:.4f} 0.05 {X[-1]:.4f} synthetic test\n{body}\n")


def uxd(p: Path):
    body = "\n".join(" ".join(f"{v:9.0f}" for v in Y[i:i + 8]) for i in range(0, Y.size, 8))
    p.write_text(f"; test\n_FILEVERSION=1\n_WL1=1.540600\n_DRIVE='COUPLED'\n_STEPSIZE=0.050000\n"
                 f"_START={X[0]:.6f}\n_STEPCOUNT={Y.size}\n_COUNTS\n{body}\n")


def raw_v1(p: Path):
    h = bytearray(156)
    h[0:4] = b"RAW "
    struct.pack_into("<I", h, 4, Y.size)
    struct.pack_into("<f", h, 12, 0.05)
    struct.pack_into("<f", h, 24, X[0])
    struct.pack_into("<ff", h, 72, 1.5406, 1.54443)
    p.write_bytes(bytes(h) + Y.astype("<f4").tobytes())


def raw_v2(p: Path):
    h = bytearray(256)
    h[0:4] = b"RAW2"
    struct.pack_into("<H", h, 4, 1)
    struct.pack_into("<f", h, 190, 1.5406)
    r = bytearray(48)
    struct.pack_into("<HH", r, 0, 48, Y.size)
    struct.pack_into("<ff", r, 12, 0.05, X[0])
    p.write_bytes(bytes(h) + bytes(r) + Y.astype("<f4").tobytes())


def raw_v3(p: Path):
    h = bytearray(712)
    h[0:7] = b"RAW1.01"
    struct.pack_into("<I", h, 12, 1)
    struct.pack_into("<d", h, 624, 1.5406)
    r = bytearray(304)
    struct.pack_into("<II", r, 0, 304, Y.size)
    struct.pack_into("<d", r, 16, X[0])
    struct.pack_into("<d", r, 176, 0.05)
    struct.pack_into("<I", r, 256, 0)
    p.write_bytes(bytes(h) + bytes(r) + Y.astype("<f4").tobytes())


def xrdml(p: Path):
    p.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
 <xrdMeasurement measurementType="Scan" status="Completed">
  <usedWavelength intended="K-Alpha 1"><kAlpha1 unit="Angstrom">1.5405980</kAlpha1></usedWavelength>
  <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
   <dataPoints>
    <positions axis="2Theta" unit="deg"><startPosition>{X[0]}</startPosition><endPosition>{X[-1]}</endPosition></positions>
    <positions axis="Omega" unit="deg"><startPosition>5</startPosition><endPosition>15</endPosition></positions>
    <commonCountingTime unit="seconds">1.0</commonCountingTime>
    <intensities unit="counts">{' '.join(f'{v:.0f}' for v in Y)}</intensities>
   </dataPoints>
  </scan>
 </xrdMeasurement>
</xrdMeasurements>
""")


def brml(p: Path):
    data = "\n".join(f"<Datum>1,1,{x:.4f},{x / 2:.4f},{y:.0f}</Datum>" for x, y in zip(X, Y))
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<RawData xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <FixedInformation><Instrument><PrimaryTracks><TrackInfoData><MountedOptics><InfoData>
  <Tube><WaveLengthAlpha1 Value="1.5406" Unit="Å" /></Tube></InfoData></MountedOptics></TrackInfoData>
 </PrimaryTracks></Instrument></FixedInformation>
 <DataRoutes><DataRoute>
  <DataViews>
   <RawDataView xsi:type="RecordedRawDataView" Start="0" Length="1"><Recording Name="MeasuredTimePerStep" /></RawDataView>
   <RawDataView xsi:type="RecordedRawDataView" Start="1" Length="1"><Recording Name="PlannedTimePerStep" /></RawDataView>
   <RawDataView xsi:type="LogicDataView" Start="2" Length="1" LogicName="TwoTheta" />
   <RawDataView xsi:type="LogicDataView" Start="3" Length="1" LogicName="Theta" />
   <RawDataView xsi:type="RecordedRawDataView" Start="4" Length="1"><Recording Name="Counter1D" /></RawDataView>
  </DataViews>
  {data}
 </DataRoute></DataRoutes>
</RawData>"""
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("Experiment0/RawData0.xml", xml.encode())
        z.writestr("Experiment0/DataContainer.xml", b"<DataContainer/>")


def ras(p: Path):
    rows = "\n".join(f"{x:.4f} {y / 2:.1f} 2.0000" for x, y in zip(X, Y))
    p.write_bytes(("*RAS_DATA_START\n*RAS_HEADER_START\n*HW_XG_WAVE_LENGTH_ALPHA1 \"1.540593\"\n"
                   "*MEAS_SCAN_AXIS_X \"TwoThetaTheta\"\n*MEAS_SCAN_START \"10.0000\"\n*RAS_HEADER_END\n"
                   f"*RAS_INT_START\n{rows}\n*RAS_INT_END\n*RAS_DATA_END\n").encode("latin-1"))


def rasx(p: Path):
    rows = "\n".join(f"{x:.4f}\t{y:.0f}\t1" for x, y in zip(X, Y))
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("Data0/Profile0.txt", rows)
        z.writestr("Data0/MesurementConditions0.xml",
                   "<MeasurementConditions><WavelengthKalpha1>1.540593</WavelengthKalpha1></MeasurementConditions>")


def gsas_std(p: Path):
    recs = ["".join(f" 1{v:6.0f}" for v in Y[i:i + 10]).ljust(80) for i in range(0, Y.size, 10)]
    p.write_text(f"synthetic test\nBANK 1 {Y.size} {len(recs)} CONS {X[0] * 100:.2f} 5.00 0 0 STD\n"
                 + "\n".join(recs) + "\n")


def gsas_esd(p: Path):
    recs = ["".join(f"{v:8.0f}{np.sqrt(v):8.2f}" for v in Y[i:i + 5]) for i in range(0, Y.size, 5)]
    p.write_text(f"synthetic test\nBANK 1 {Y.size} {len(recs)} CONS {X[0] * 100:.2f} 5.00 0 0 ESD\n"
                 + "\n".join(recs) + "\n")


def gsas_fxye(p: Path):
    recs = [f"{x * 100:.3f} {y:.2f} {np.sqrt(y):.3f}" for x, y in zip(X, Y)]
    p.write_text(f"synthetic test\nBANK 1 {Y.size} {len(recs)} CONS {X[0] * 100:.2f} 5.00 0 0 FXYE\n"
                 + "\n".join(recs) + "\n")


def gsas_alt(p: Path):
    recs = []
    for i in range(0, Y.size, 4):
        recs.append("".join(f"{x * 3200:8.0f}{y / 1000:7.4f}{0.01:5.3f}" for x, y in zip(X[i:i + 4], Y[i:i + 4])))
    p.write_text(f"synthetic test\nBANK 1 {Y.size} {len(recs)} CONS {X[0] * 100:.2f} 5.00 0 0 ALT\n"
                 + "\n".join(recs) + "\n")


def chi_fit2d(p: Path):
    rows = "\n".join(f"  {x:.6e}  {y:.6e}" for x, y in zip(X, Y))
    p.write_text(f"synthetic.tif: integrated\n2-Theta Angle (Degrees)\nIntensity\n{Y.size:10d}\n{rows}\n")


def chi_pyfai(p: Path):
    rows = "\n".join(f"{x:.6e} {y:.6e}" for x, y in zip(X, Y))
    p.write_text(f"# == pyFAI calibration ==\n# Wavelength: 1.5406e-10 m\n# --> synthetic.edf\n"
                 f"#    2th_deg             I \n{rows}\n")


def cif_powder(p: Path):
    rows = "\n".join(f"{x:.4f} {y:.0f}({np.sqrt(y):.0f})" for x, y in zip(X, Y))
    p.write_text("data_test\n_diffrn_radiation_wavelength 1.5406\nloop_\n_pd_meas_2theta_scan\n"
                 f"_pd_meas_counts_total\n{rows}\n")


def cif_range(p: Path):
    rows = "\n".join(f"{y:.0f}" for y in Y)
    p.write_text(f"data_test\n_pd_meas_2theta_range_min {X[0]}\n_pd_meas_2theta_range_max {X[-1]}\n"
                 f"_pd_meas_2theta_range_inc 0.05\nloop_\n_pd_meas_intensity_total\n{rows}\n")


# (writer, file name, reader that must be chosen, y scale the reader reports relative to Y)
CASES = {
    "xy": (xy, "a.xy", "xy", 1.0),
    "xye": (lambda p: xy(p, ncol=3), "a.xye", "xy", 1.0),
    "csv_header": (lambda p: xy(p, sep=",", header="2Theta,Intensity"), "a.csv", "xy", 1.0),
    "semicolon_decimal_comma": (lambda p: xy(p, sep=";", decimal=",", header="# Winkel;Intensität"), "a.txt", "xy", 1.0),
    "tab_decimal_comma": (lambda p: xy(p, sep="\t", decimal=","), "a.txt", "xy", 1.0),
    "fullprof": (fullprof, "a.dat", "fullprof", 1.0),
    "uxd": (uxd, "a.uxd", "bruker_uxd", 1.0),
    "raw_v1": (raw_v1, "a.raw", "bruker_raw", 1.0),
    "raw_v2": (raw_v2, "a.raw", "bruker_raw", 1.0),
    "raw_v3": (raw_v3, "a.raw", "bruker_raw", 1.0),
    "xrdml": (xrdml, "a.xrdml", "xrdml", 1.0),
    "brml": (brml, "a.brml", "bruker_brml", 1.0),
    "ras": (ras, "a.ras", "rigaku_ras", 1.0),
    "rasx": (rasx, "a.rasx", "rigaku_rasx", 1.0),
    "gsas_std": (gsas_std, "a.gsa", "gsas", 1.0),
    "gsas_esd": (gsas_esd, "a.gsa", "gsas", 1.0),
    "gsas_fxye": (gsas_fxye, "a.fxye", "gsas", 1.0),
    "gsas_alt": (gsas_alt, "a.gsa", "gsas", 1e-3),
    "chi_fit2d": (chi_fit2d, "a.chi", "chi", 1.0),
    "chi_pyfai": (chi_pyfai, "a.chi", "chi", 1.0),
    "cif_loop": (cif_powder, "a.cif", "cif_powder", 1.0),
    "cif_range": (cif_range, "a.cif", "cif_powder", 1.0),
}
