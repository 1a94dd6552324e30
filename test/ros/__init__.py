"""Tests of distill_ros.ros (a package so its conftest does not shadow test/conftest.py)."""
